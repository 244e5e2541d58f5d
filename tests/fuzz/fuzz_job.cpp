// The job parser and validator on arbitrary text: a JobError (the clear message) or a job.
#include <cstdint>
#include <string>

#include "efficientllm/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    ellm::parse_job(std::string(reinterpret_cast<const char*>(data), size), "/nonexistent/fuzz.json");
  } catch (const ellm::JobError&) {
  }
  return 0;
}
