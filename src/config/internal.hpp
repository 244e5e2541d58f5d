// Internal to src/config: what job.cpp (the file's structure, overrides, runs and grid) and
// validate.cpp (the run fields: their schema, checks and typed conversion) share.
#pragma once
#include <algorithm>
#include <filesystem>
#include <numeric>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "efficientllm/config.hpp"

namespace ellm::config {

// Keys stay in document order, so the first error reported is the first one in the file and
// grid axes expand in the order they are written.
using Json = nlohmann::ordered_json;

// What every check needs to report an error and to resolve corpus paths.
struct Context {
  std::string file;                  // as the user named it, for messages
  std::filesystem::path base_dir;    // absolute; relative corpus paths start here
  std::map<std::string, std::string> overridden;  // pointer a --set or --grid wrote (and all below it) → the flag

  // Throws JobError(file, pointer, message), saying "(from --set)" when a --set put the value
  // there.
  [[noreturn]] void fail(const std::string& pointer, const std::string& message) const;
};

// ---- message pieces ----

// RFC 6901: `pointer` extended by one reference token ("~" and "/" escaped).
inline std::string child(const std::string& pointer, std::string_view token) {
  std::string out = pointer + "/";
  for (const char c : token) out += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
  return out;
}
inline std::string child(const std::string& pointer, std::size_t index) {
  return pointer + "/" + std::to_string(index);
}

// A value as JSON text, cut short so a stray huge value cannot flood a message. Bytes that are
// not UTF-8 (possible in a --set value) are replaced rather than thrown about.
inline std::string show(const Json& value) {
  constexpr std::size_t kMaxChars = 60;
  std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  return text.size() > kMaxChars ? text.substr(0, kMaxChars) + "..." : text;
}

// For type errors: `string "ten"`, `number 10.0`, `array [1,2]`, `null`.
inline std::string describe(const Json& value) {
  return value.is_null() ? "null" : std::string(value.type_name()) + " " + show(value);
}

inline std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) out += (i == 0 ? "" : separator) + items[i];
  return out;
}

// A string as a JSON string literal, never shortened: paths must be shown whole.
inline std::string quote(const std::string& text) {
  return Json(text).dump(-1, ' ', false, Json::error_handler_t::replace);
}

// Levenshtein distance, one row at a time.
inline std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), std::size_t{0});
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1] ? 1 : 0)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// `unknown key; did you mean "n_layers"? (allowed: vocab_size, n_layers, ...)`
inline std::string unknown_message(std::string_view noun, std::string_view given,
                                   const std::vector<std::string>& allowed) {
  std::string message = "unknown " + std::string(noun);
  // Only a close name is suggested: a far one would mislead more than it helps.
  std::size_t best_distance = std::max<std::size_t>(2, given.size() / 3) + 1;
  const std::string* best = nullptr;
  for (const std::string& name : allowed) {
    const std::size_t distance = edit_distance(given, name);
    if (distance < best_distance) {
      best_distance = distance;
      best = &name;
    }
  }
  if (best != nullptr) message += "; did you mean " + quote(*best) + "?";
  return message + " (allowed: " + join(allowed, ", ") + ")";
}

// ---- run fields (validate.cpp) ----

// One run field as written somewhere in the job file.
struct Setting {
  std::string path;  // dotted: "model.n_heads"
  Json value;
  std::string pointer;  // where it was written: "/runs/1/model/n_heads"
};
// The settings of one merge layer; later layers win (built-in < "defaults" < the run itself).
using Layer = std::vector<Setting>;

// Checks a run object as written ("defaults" or an entry of "runs"): known sections and keys,
// types, ranges, enums and corpus files. A "name" key is skipped when `named` (job.cpp checks it).
void check_run_object(const Json& object, const std::string& pointer, bool named,
                      const Context& ctx);
// Checks that a dotted path such as "model.n_layers" names a run field.
void check_field_path(const std::string& path, const std::string& pointer, const Context& ctx);
// Checks one value for the run field at `path` (which must be known).
void check_field_value(const std::string& path, const Json& value, const std::string& pointer,
                       const Context& ctx);
// Applies the layers over the built-in defaults, checks the run's cross-field rules (blaming the
// most specific setting involved) and fills in as_json.
RunConfig build_run(const std::string& name, const std::vector<Layer>& layers, const Context& ctx);

}  // namespace ellm::config
