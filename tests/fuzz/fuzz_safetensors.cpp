// The safetensors reader on an arbitrary file: a FileError or tensors whose bytes can all be read.
#include <cstdint>
#include <vector>

#include "fuzz_support.hpp"
#include "io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = ellm::fuzz::write_scratch("model.safetensors", data, size);
  try {
    const ellm::st::Reader r = ellm::st::Reader::open(path);
    for (const std::string& name : r.names()) {
      const ellm::st::TensorView& t = r.at(name);
      std::vector<float> out(t.numel());
      ellm::st::read_as(t, out.data());  // touches every byte the header promised
    }
  } catch (const ellm::st::FileError&) {
  }
  return 0;
}
