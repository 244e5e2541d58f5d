// The efficientllm command line: `run`, `validate`, `--help`, `--version`.
// Exit codes: 0 success, 1 failure while running, 2 bad input (job file, flag, corpus, layout).
#pragma once

namespace ellm::cli {

int main(int argc, char** argv);

}  // namespace ellm::cli
