// Tables of text cells, rendered as Markdown or CSV, and the number formats the renderers share.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ellm {

struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;

  std::string markdown() const;
  std::string csv() const;  // RFC 4180: cells with a comma, quote or newline are quoted
};

// `format` (printf) applied to a JSON number; "–" for null or a missing value.
std::string fmt(const char* format, const nlohmann::json& v);
std::string mib(const nlohmann::json& bytes);     // "123" (MiB)
std::string ms(const nlohmann::json& seconds);    // "12.3" (ms)
std::string pct(const nlohmann::json& fraction);  // "45.6%"
// A JSON value as a CSV cell: numbers at full precision, strings as they are, null → "".
std::string raw(const nlohmann::json& v);
// The value at a JSON pointer such as "/latency/step/p95", or null when absent.
const nlohmann::json& at(const nlohmann::json& doc, const std::string& pointer);

}  // namespace ellm
