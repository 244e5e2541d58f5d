// The corpus loader (reading, validation, train/validation split, instruction packing) on an
// arbitrary file. The first byte picks the format, the sequence length and the held-out fraction.
#include <cstdint>

#include "data/corpus.hpp"
#include "efficientllm/config.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t knob = data[0];
  ellm::DataConfig config;
  config.format = knob % 3 == 0 ? ellm::DataFormat::Text
                  : knob % 3 == 1 ? ellm::DataFormat::Tokens
                                  : ellm::DataFormat::Instructions;
  config.val_fraction = (knob >> 5) / 8.0;  // 0 … 0.875
  config.corpus = {ellm::fuzz::write_scratch("corpus", data + 1, size - 1)};
  const int seq_len = 1 + ((knob >> 2) & 7) * 3;
  try {
    ellm::load_corpus(config, seq_len, 256, "fuzz.json");
  } catch (const ellm::JobError&) {
  }
  return 0;
}
