// `--set PATH=VALUE` on arbitrary text, applied to a small valid job: a JobError or a job.
#include <cstdint>
#include <string>

#include "efficientllm/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string kJob = R"({"name": "fuzz", "runs": [{"name": "a"}]})";
  try {
    const ellm::Override o = ellm::parse_override(std::string(reinterpret_cast<const char*>(data), size));
    ellm::parse_job(kJob, "/nonexistent/fuzz.json", {o});
  } catch (const ellm::JobError&) {
  }
  return 0;
}
