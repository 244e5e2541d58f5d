// The report reader of `efficientllm report` on arbitrary text, rendered as markdown and CSV.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "report/reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const nlohmann::json r = ellm::parse_report(std::string(reinterpret_cast<const char*>(data), size), "fuzz.json");
    ellm::render_report(r, "md", "fuzz.json");
    ellm::render_report(r, "csv", "fuzz.json");
  } catch (const std::runtime_error&) {
  }
  return 0;
}
