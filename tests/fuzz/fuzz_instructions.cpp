// The instruction-data (JSONL) reader on an arbitrary file, with the byte tokenizer.
#include <cstdint>

#include "data/instructions.hpp"
#include "efficientllm/config.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto tokenizer = ellm::make_tokenizer(ellm::TokenizerConfig{}, "fuzz.json", "/data/tokenizer");
  const std::string path = ellm::fuzz::write_scratch("sft.jsonl", data, size);
  try {
    ellm::read_instructions(path, *tokenizer, "fuzz.json", "/data/corpus/0");
  } catch (const ellm::JobError&) {
  }
  return 0;
}
