// The token file reader on an arbitrary file: a JobError or ids all below the vocabulary.
#include <cstdint>
#include <cstdlib>

#include "data/token_file.hpp"
#include "efficientllm/config.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = ellm::fuzz::write_scratch("corpus.tok", data, size);
  try {
    const ellm::TokenFile f = ellm::read_token_file(path, "fuzz.json", "/data/corpus/0");
    for (const ellm::TokenId id : f.ids) {
      if (id < 0 || id >= f.vocab_size) std::abort();  // the reader promised every id < vocab_size
    }
  } catch (const ellm::JobError&) {
  }
  return 0;
}
