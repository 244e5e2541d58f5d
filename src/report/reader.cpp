#include "report/reader.hpp"

#include <stdexcept>

#include "report/writer.hpp"

namespace ellm {
using nlohmann::json;

json parse_report(const std::string& text, const std::string& file) {
  // nlohmann's parser is recursive: a hostile file of a million '[' would exhaust the stack
  // before the parser could refuse it, so nesting is bounded first (a report nests < 16 deep).
  constexpr int kMaxDepth = 256;
  int depth = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxDepth) throw std::runtime_error(file + ": nested deeper than " + std::to_string(kMaxDepth) + " levels");
    } else if (c == ']' || c == '}') {
      depth--;
    }
  }
  json report = json::parse(text, nullptr, false);
  if (report.is_discarded() || !report.is_object()) throw std::runtime_error(file + ": not a JSON object");
  const json* version = report.contains("schema_version") ? &report["schema_version"] : nullptr;
  if (!version || !version->is_number_integer() || version->get<long long>() != kReportSchemaVersion) {
    throw std::runtime_error(file + ": /schema_version: must be " + std::to_string(kReportSchemaVersion) + ", got " +
                             (version ? version->dump() : "nothing"));
  }
  return report;
}

std::string render_report(const json& report, const std::string& format, const std::string& file) {
  try {
    if (format == "md") return render_markdown(report);
    if (format == "csv") return render_csv(report);
    return report.dump(2) + "\n";
  } catch (const std::exception& e) {  // json::exception, or std::logic_error from json_assert.hpp
    // The renderers index the report as the schema lays it out; any other shape lands here.
    throw std::runtime_error(file + ": not shaped like an efficientllm report (docs/report.schema.json): " + e.what());
  }
}

}  // namespace ellm
