// The commands beside run and validate. Each takes main's argc/argv (argv[1] is the command)
// and returns the exit code of commands.hpp: 0, 1 failure while running, 2 bad input.
#pragma once

namespace ellm::cli {

constexpr int kExitFailure = 1;
constexpr int kExitBadInput = 2;
constexpr int kExitInterrupted = 143;  // 128 + SIGTERM: a run stopped by SIGTERM/SIGINT (checkpoint saved)

// efficientllm topo [--policy P] [--json]: the node's topology and the rank → package / NUMA /
// cores / GPU map; under mpirun the whole cluster's, printed by the root.
int topo_main(int argc, char** argv);
// efficientllm report DIR... [--format md|csv|json]: re-renders one report, or puts several
// side by side with ratios against the first.
int report_main(int argc, char** argv);
// efficientllm tokenizer train --corpus FILE... --vocab-size N --out FILE.model: trains a
// SentencePiece model (docs/DATA.md).
int tokenizer_main(int argc, char** argv);
// efficientllm tokenize TEXT_FILE --out FILE.tok [--tokenizer bytes|FILE.model]: writes a token
// file (docs/DATA.md).
int tokenize_main(int argc, char** argv);
// efficientllm generate JOB.json --prompt TEXT [--max-tokens N --temperature T --top-p P --seed S]:
// streams a continuation of the prompt from the job's model (docs/INFERENCE.md).
int generate_main(int argc, char** argv);
// efficientllm bench-infer JOB.json [--out DIR]: the inference benchmark of the job's inference
// section at each weight format (docs/INFERENCE.md).
int bench_infer_main(int argc, char** argv);
// efficientllm predict JOB.json --report R --network N | predict fit SWEEP... : the scaling
// predictor (docs/SCALING.md).
int predict_main(int argc, char** argv);

}  // namespace ellm::cli
