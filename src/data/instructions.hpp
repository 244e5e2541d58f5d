// Instruction data for fine-tuning (docs/DATA.md, "Instruction data"): JSONL files of
// {"prompt": ..., "response": ...} or {"messages": [{"role": ..., "content": ...}, ...]} lines,
// rendered with one template into tokens whose loss mask keeps the assistant's tokens only.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/tokenizer.hpp"

namespace ellm {

struct InstructionSample {
  std::vector<TokenId> tokens;
  std::vector<std::uint8_t> learned;  // per token: 1 when the model is trained to predict it
  int line = 0;                       // 1-based line of its file
};

// Reads, checks and renders every sample of one JSONL file (blank lines are skipped). A bad line
// throws JobError(source, pointer, "instruction file \"F\": line N: what was expected").
std::vector<InstructionSample> read_instructions(const std::filesystem::path& path,
                                                 const Tokenizer& tokenizer,
                                                 const std::string& source,
                                                 const std::string& pointer);

}  // namespace ellm
