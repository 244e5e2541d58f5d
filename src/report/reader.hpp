// Reading a report.json back (`efficientllm report`): the text is untrusted (a file a user points
// at), so every failure is one std::runtime_error naming the file, never a crash.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace ellm {

// The report.json layout this build writes and reads (docs/report.schema.json, "schema_version").
constexpr int kReportSchemaVersion = 3;

// Parses `text` (the contents of `file`) into a report: a JSON object of the supported schema
// version. Throws std::runtime_error("FILE: ...").
nlohmann::json parse_report(const std::string& text, const std::string& file);

// The report rendered as "md", "csv" or "json". A document that parses but is not shaped like a
// report (a field of the wrong type, a missing section) throws std::runtime_error naming `file`.
std::string render_report(const nlohmann::json& report, const std::string& format, const std::string& file);

}  // namespace ellm
