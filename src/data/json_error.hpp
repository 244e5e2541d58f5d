// nlohmann's parse error without its "[json.exception.parse_error.101] parse error at line 1,
// column 5: " prefix: the data files name their own line, and that prefix is noise there.
#pragma once
#include <string>

namespace ellm {

inline std::string json_error_text(const std::exception& e) {
  const std::string what = e.what();
  const std::size_t colon = what.find(": ");
  return colon == std::string::npos ? what : what.substr(colon + 2);
}

}  // namespace ellm
