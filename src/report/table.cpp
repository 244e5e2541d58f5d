#include "report/table.hpp"

#include <cstdio>

namespace ellm {
using nlohmann::json;

std::string Table::markdown() const {
  const auto line = [](const std::vector<std::string>& cells) {
    std::string s = "|";
    for (const std::string& c : cells) s.append(" ").append(c).append(" |");
    return s.append("\n");
  };
  std::string out = line(header) + line(std::vector<std::string>(header.size(), "---"));
  for (const auto& r : rows) out += line(r);
  return out;
}

std::string Table::csv() const {
  const auto line = [](const std::vector<std::string>& cells) {
    std::string s;
    for (std::size_t i = 0; i < cells.size(); i++) {
      if (i) s.push_back(',');
      const std::string& c = cells[i];
      if (c.find_first_of(",\"\n") == std::string::npos) {
        s.append(c);
        continue;
      }
      s.push_back('"');
      for (const char ch : c) s.append(ch == '"' ? 2 : 1, ch);  // a quote is doubled
      s.push_back('"');
    }
    return s.append("\n");
  };
  std::string out = line(header);
  for (const auto& r : rows) out += line(r);
  return out;
}

std::string fmt(const char* format, const json& v) {
  if (!v.is_number()) return "–";
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v.get<double>());
  return buf;
}

std::string mib(const json& bytes) { return bytes.is_number() ? fmt("%.0f", bytes.get<double>() / (1024.0 * 1024.0)) : "–"; }
std::string ms(const json& seconds) { return seconds.is_number() ? fmt("%.1f", seconds.get<double>() * 1e3) : "–"; }
std::string pct(const json& fraction) { return fraction.is_number() ? fmt("%.1f%%", 100.0 * fraction.get<double>()) : "–"; }

std::string raw(const json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

const json& at(const json& doc, const std::string& pointer) {
  static const json null_value = nullptr;
  const json::json_pointer p(pointer);
  return doc.contains(p) ? doc.at(p) : null_value;
}

}  // namespace ellm
