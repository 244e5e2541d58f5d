// Job files: reading and parsing them, --set overrides, the top-level structure, and turning
// "runs", "grid" or the bare defaults into the list of runs. The run fields live in validate.cpp.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <system_error>
#include <utility>

#include "internal.hpp"

namespace ellm {
namespace {

std::string error_text(const std::string& file, const std::string& pointer,
                       const std::string& message) {
  return file + ": " + (pointer.empty() ? "" : pointer + ": ") + message;
}

}  // namespace

JobError::JobError(std::string file, std::string pointer, std::string message)
    : std::runtime_error(error_text(file, pointer, message)),
      file_(std::move(file)),
      pointer_(std::move(pointer)),
      message_(std::move(message)) {}

namespace config {

void Context::fail(const std::string& pointer, const std::string& message) const {
  for (const auto& [written, flag] : overridden)
    if (pointer == written || pointer.starts_with(written + "/")) throw JobError(file, pointer, message + " (from " + flag + ")");
  throw JobError(file, pointer, message);
}

namespace {

namespace fs = std::filesystem;

// A grid axis of 10 values on each of 5 fields is already 100000 runs: far past any sane
// benchmark, so it is more likely a mistake than a plan.
constexpr std::size_t kMaxGridRuns = 10000;

// ---- reading and parsing ----

std::string read_file(const fs::path& file) {
  std::error_code ignored;
  // An ifstream opens a directory without complaint and then reads nothing.
  if (fs::is_directory(file, ignored))
    throw JobError(
        file.string(), "",
        "cannot read file: " + std::make_error_code(std::errc::is_a_directory).message());
  std::ifstream in(file, std::ios::binary);
  if (!in)
    throw JobError(file.string(), "", "cannot read file: " + std::string(std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// nlohmann keeps the last of two equal keys without a word; in a job file a repeated key is
// almost always an editing mistake, so this parse callback tracks where it is and rejects one.
class RepeatedKeyGuard {
 public:
  explicit RepeatedKeyGuard(const Context& ctx) : ctx_(&ctx) {}

  bool operator()(int /*depth*/, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start:
        open_.push_back({.pointer = pointer_of_next_value(),
                         .is_array = event == Json::parse_event_t::array_start});
        break;
      case Json::parse_event_t::object_end:
      case Json::parse_event_t::array_end:
        open_.pop_back();
        break;
      case Json::parse_event_t::key: {
        Container& object = open_.back();
        object.key = parsed.get<std::string>();
        if (!object.keys.insert(object.key).second)
          ctx_->fail(child(object.pointer, object.key), "repeated key; a key may appear only once");
        break;
      }
      case Json::parse_event_t::value:
        pointer_of_next_value();  // moves past an array element
        break;
    }
    return true;
  }

 private:
  struct Container {
    std::string pointer;
    bool is_array = false;
    std::size_t next_index = 0;    // arrays
    std::string key{};             // objects: the key just read
    std::set<std::string> keys{};  // objects: every key read so far
  };

  // Where the value starting now sits; inside an array this also advances the index.
  std::string pointer_of_next_value() {
    if (open_.empty()) return "";
    Container& parent = open_.back();
    return parent.is_array ? child(parent.pointer, parent.next_index++)
                           : child(parent.pointer, parent.key);
  }

  const Context* ctx_;
  std::vector<Container> open_;
};

// nlohmann's message minus its "[json.exception...] " tag.
std::string parser_detail(const std::string& what) {
  const auto tag_end = what.find("] ");
  return tag_end == std::string::npos ? what : what.substr(tag_end + 2);
}

Json parse_json(const std::string& text, const Context& ctx) {
  try {
    return Json::parse(text, RepeatedKeyGuard(ctx));
  } catch (const Json::parse_error& error) {
    // "parse error at line 3, column 5: syntax error ..." -> "invalid JSON at line 3, ..."
    const std::string detail = parser_detail(error.what());
    const std::string located = "parse error at ";
    ctx.fail("", detail.starts_with(located) ? "invalid JSON at " + detail.substr(located.size())
                                             : "invalid JSON: " + detail);
  } catch (const Json::exception& error) {  // e.g. a number too large for a double
    ctx.fail("", "invalid JSON: " + parser_detail(error.what()));
  }
}

// ---- overrides ----

// The value of a --set: JSON when it parses as JSON, so numbers and booleans keep their type;
// otherwise the text itself, so `--set model.norm=rmsnorm` needs no quotes.
Json override_value(const Override& change) {
  Json value = Json::parse(change.value, nullptr, /*allow_exceptions=*/false);
  return value.is_discarded() ? Json(change.value) : value;
}

std::vector<std::string> split_dotted(const std::string& path) {
  std::vector<std::string> keys;
  std::istringstream in(path);
  for (std::string key; std::getline(in, key, '.');) keys.push_back(key);
  return keys;
}

// Writes `value` at `keys` below `object`, creating missing objects on the way, and records where
// it went. A non-object in the way is left as written, for the checks to report.
void write_override(Json& object, std::string pointer, const std::vector<std::string>& keys,
                    const Json& value, Context& ctx) {
  Json* target = &object;
  for (std::size_t i = 0; i + 1 < keys.size(); ++i) {
    if (!target->is_object()) return;
    if (!target->contains(keys[i])) (*target)[keys[i]] = Json::object();
    target = &(*target)[keys[i]];
    pointer = child(pointer, keys[i]);
  }
  if (!target->is_object()) return;
  (*target)[keys.back()] = value;
  ctx.overridden[child(pointer, keys.back())] = "--set";
}

// An override goes into "defaults" and into every run of "runs", so it wins everywhere; on a
// grid key it replaces that axis with its single value instead (the grid wins over the runs).
void apply_override(Json& root, const Override& change, Context& ctx) {
  if (change.grid_axis) {  // the runs and defaults keep their value: the grid's wins, or a run's is reported
    if (!root.contains("grid")) root["grid"] = Json::object();
    if (!root["grid"].is_object()) return;  // for the checks to report
    root["grid"][change.path] = Json::parse(change.value);
    ctx.overridden[child("/grid", change.path)] = "--grid";
    return;
  }
  const Json value = override_value(change);
  std::vector<std::string> keys = split_dotted(change.path);
  if (keys.empty()) return;
  const bool grid_axis =
      root.contains("grid") && root["grid"].is_object() && root["grid"].contains(change.path);
  if (grid_axis) {
    root["grid"][change.path] = Json::array({value});
    ctx.overridden[child("/grid", change.path)] = "--set";
  } else if (root.contains("runs") && root["runs"].is_array()) {  // runs may not set grid axes
    Json& runs = root["runs"];
    for (std::size_t i = 0; i < runs.size(); ++i)
      write_override(runs[i], child("/runs", i), keys, value, ctx);
  }
  keys.insert(keys.begin(), "defaults");
  write_override(root, "", keys, value, ctx);
}

// ---- checks of the file's structure ----

bool is_name_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

// Names become file and directory names in reports, so they keep to a portable charset.
void check_name(const Json& value, const std::string& pointer, const Context& ctx) {
  if (!value.is_string()) ctx.fail(pointer, "must be a string, got " + describe(value));
  const std::string& name = value.get_ref<const std::string&>();
  if (name.empty() || name == "." || name == ".." || !std::ranges::all_of(name, is_name_char))
    ctx.fail(pointer, "must match [A-Za-z0-9_.-]+ and not be \".\" or \"..\"; got " + show(value));
}

void check_description(const Json& value, const std::string& pointer, const Context& ctx) {
  if (!value.is_string()) ctx.fail(pointer, "must be a string, got " + describe(value));
}

void check_defaults(const Json& value, const std::string& pointer, const Context& ctx) {
  if (!value.is_object()) ctx.fail(pointer, "must be an object, got " + describe(value));
  check_run_object(value, pointer, /*named=*/false, ctx);
}

void check_runs(const Json& runs, const std::string& pointer, const Context& ctx) {
  if (!runs.is_array() || runs.empty())
    ctx.fail(pointer, "must be a non-empty array of run objects, got " + describe(runs));
  std::map<std::string, std::string> first_use;  // run name -> pointer to where it first appeared
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const Json& run = runs[i];
    const std::string at = child(pointer, i);
    if (!run.is_object()) ctx.fail(at, "must be an object, got " + describe(run));
    if (!run.contains("name"))
      ctx.fail(at, "missing required key \"name\" (every run in \"runs\" needs a unique name)");
    const std::string name_at = child(at, "name");
    check_name(run.at("name"), name_at, ctx);
    const auto [first, fresh] = first_use.emplace(run.at("name").get<std::string>(), name_at);
    if (!fresh)
      ctx.fail(name_at, "duplicate run name " + show(run.at("name")) + " (first used at " +
                            first->second + ")");
    check_run_object(run, at, /*named=*/true, ctx);
  }
}

// Grid values name their runs: strings as written, anything else as JSON.
// A grid value as it appears in run names. Run names become directory names (checkpoints/NAME/),
// so a path-valued grid field ("../../x") must not carry a separator into them: '/' becomes '_'
// (the uniqueness check below sees the same label, so two values cannot collide silently).
std::string label_of(const Json& value) {
  std::string label = value.is_string() ? value.get<std::string>() : value.dump();
  std::ranges::replace(label, '/', '_');
  std::ranges::replace(label, '\0', '_');
  return label;
}

void check_grid(const Json& grid, const std::string& pointer, const Context& ctx) {
  if (!grid.is_object() || grid.empty())
    ctx.fail(pointer, "must be a non-empty object mapping run fields to arrays of values, got " +
                          describe(grid));
  std::size_t run_count = 1;
  for (const auto& [path, values] : grid.items()) {
    const std::string at = child(pointer, path);
    check_field_path(path, at, ctx);
    if (!values.is_array() || values.empty())
      ctx.fail(at, "must be a non-empty array of values, got " + describe(values));
    std::set<std::string> labels;
    for (std::size_t i = 0; i < values.size(); ++i) {
      check_field_value(path, values[i], child(at, i), ctx);
      if (!labels.insert(label_of(values[i])).second)
        ctx.fail(child(at, i),
                 "repeats " + show(values[i]) + "; grid values must differ (they name the runs)");
    }
    run_count *= values.size();
    if (run_count > kMaxGridRuns)
      ctx.fail(pointer, "expands to more than " + std::to_string(kMaxGridRuns) +
                            " runs; split it into several jobs");
  }
}

using Check = void (*)(const Json& value, const std::string& pointer, const Context& ctx);
struct TopLevelKey {
  std::string_view key;
  Check check;
};
constexpr TopLevelKey kTopLevelKeys[] = {
    {"name", check_name},         {"description", check_description},
    {"defaults", check_defaults}, {"runs", check_runs},
    {"grid", check_grid},
};

// With both "runs" and "grid", every run is crossed with every grid point (seeds of several
// architectures, say). A run may not set a grid field itself: which value won would be a guess.
void check_runs_times_grid(const Json& root, const Context& ctx) {
  const Json& runs = root.at("runs");
  const Json& grid = root.at("grid");
  for (std::size_t i = 0; i < runs.size(); ++i)
    for (const auto& [path, values] : grid.items()) {
      const std::vector<std::string> keys = split_dotted(path);
      if (keys.size() == 2 && runs[i].contains(keys[0]) && runs[i][keys[0]].is_object() &&
          runs[i][keys[0]].contains(keys[1]))
        ctx.fail(child(child(child("/runs", i), keys[0]), keys[1]),
                 "is also the grid axis " + child("/grid", path) +
                     "; a run crossed with the grid may not set a grid field");
    }
  std::size_t points = 1;
  for (const auto& [path, values] : grid.items()) points *= values.size();
  if (runs.size() * points > kMaxGridRuns)
    ctx.fail("/grid", std::to_string(runs.size()) + " runs × " + std::to_string(points) +
                          " grid points is more than " + std::to_string(kMaxGridRuns) +
                          " runs; split it into several jobs");
}

// The shape of the whole file first, then every key in document order.
void check_job(const Json& root, const Context& ctx) {
  if (!root.is_object()) ctx.fail("", "a job file must hold a JSON object, got " + describe(root));
  if (!root.contains("name")) ctx.fail("", "missing required key \"name\"");
  for (const auto& [key, value] : root.items()) {
    const auto* entry = std::ranges::find(kTopLevelKeys, key, &TopLevelKey::key);
    if (entry == std::end(kTopLevelKeys)) {
      std::vector<std::string> allowed;
      for (const TopLevelKey& known : kTopLevelKeys) allowed.emplace_back(known.key);
      ctx.fail(child("", key), unknown_message("key", key, allowed));
    }
    entry->check(value, child("", key), ctx);
  }
  if (root.contains("runs") && root.contains("grid")) check_runs_times_grid(root, ctx);
}

// ---- expanding into runs ----

// The settings of a checked run object, in document order.
Layer settings_of(const Json& object, const std::string& pointer) {
  Layer layer;
  for (const auto& [section, section_fields] : object.items()) {
    if (!section_fields.is_object()) continue;  // a run's "name"
    for (const auto& [key, value] : section_fields.items())
      layer.push_back({section + "." + key, value, child(child(pointer, section), key)});
  }
  return layer;
}

std::vector<RunConfig> listed_runs(const Json& runs, const Layer& defaults, const Context& ctx) {
  std::vector<RunConfig> out;
  for (std::size_t i = 0; i < runs.size(); ++i)
    out.push_back(build_run(runs[i].at("name").get<std::string>(),
                            {defaults, settings_of(runs[i], child("/runs", i))}, ctx));
  return out;
}

// Moves to the next combination, the last axis fastest; false after the last one.
bool advance(std::vector<std::size_t>& index, const std::vector<std::size_t>& sizes) {
  for (std::size_t axis = index.size(); axis-- > 0;) {
    if (++index[axis] < sizes[axis]) return true;
    index[axis] = 0;
  }
  return false;
}

struct GridPoint {
  Layer settings;
  std::string label;  // "n_layers=2,lr=0.001", after the last component of each key
};

// The cartesian product of the axes in document order, the first axis varying slowest.
std::vector<GridPoint> grid_points(const Json& grid) {
  std::vector<std::size_t> sizes;
  for (const auto& [path, values] : grid.items()) sizes.push_back(values.size());
  std::vector<std::size_t> index(sizes.size(), 0);
  std::vector<GridPoint> points;
  do {
    GridPoint point;
    std::vector<std::string> labels;
    std::size_t axis = 0;
    for (const auto& [path, values] : grid.items()) {
      const Json& value = values[index[axis++]];
      point.settings.push_back({path, value, child(child("/grid", path), index[axis - 1])});
      labels.push_back(path.substr(path.rfind('.') + 1) + "=" + label_of(value));
    }
    point.label = join(labels, ",");
    points.push_back(std::move(point));
  } while (advance(index, sizes));
  return points;
}

std::vector<RunConfig> expand_runs(const Json& root, const Context& ctx) {
  const Layer defaults =
      root.contains("defaults") ? settings_of(root.at("defaults"), "/defaults") : Layer{};
  const bool has_runs = root.contains("runs"), has_grid = root.contains("grid");
  if (has_runs && !has_grid) return listed_runs(root.at("runs"), defaults, ctx);
  if (!has_runs && !has_grid) return {build_run(root.at("name").get<std::string>(), {defaults}, ctx)};
  const std::vector<GridPoint> points = grid_points(root.at("grid"));
  std::vector<RunConfig> out;
  if (!has_runs) {
    for (const GridPoint& point : points)
      out.push_back(build_run(point.label, {defaults, point.settings}, ctx));
    return out;
  }
  // Each run in the order written, crossed with every grid point: "gqa,seed=1".
  const Json& runs = root.at("runs");
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const std::string name = runs[i].at("name").get<std::string>();
    const Layer own = settings_of(runs[i], child("/runs", i));
    for (const GridPoint& point : points)
      out.push_back(build_run(name + "," + point.label, {defaults, own, point.settings}, ctx));
  }
  return out;
}

}  // namespace
}  // namespace config

Override parse_override(const std::string& text) {
  const auto equals = text.find('=');
  const std::string path = text.substr(0, equals);
  const bool empty_key = path.empty() || path.front() == '.' || path.back() == '.' ||
                         path.find("..") != std::string::npos;
  if (equals == std::string::npos || empty_key)
    throw JobError("--set", "",
                   "expected PATH=VALUE such as training.steps=50, got " + config::show(text));
  // A --set replaces one field whole. A deeper path would merge into the defaults' object but
  // replace it in every run (a run without layer_overrides of its own would lose the defaults').
  if (std::ranges::count(path, '.') > 1)
    throw JobError("--set", "",
                   "PATH must name one run field as SECTION.KEY; set an object or array field "
                   "whole, such as model.layer_overrides={\"3\": {\"window\": 64}}; got " +
                       config::show(text));
  return {path, text.substr(equals + 1)};
}

Override parse_grid_override(const std::string& text) {
  const auto fail = [&](const std::string& why) {
    throw JobError("--grid", "", why + "; expected PATH=V1,V2,... such as training.seed=1,2,3, got " + config::show(text));
  };
  Override axis;
  try {
    axis = parse_override(text);
  } catch (const JobError&) {
    fail("not PATH=VALUES");
  }
  config::Json values = config::Json::array();
  if (axis.value.starts_with("[")) {
    values = config::Json::parse(axis.value, nullptr, /*allow_exceptions=*/false);
    if (values.is_discarded() || !values.is_array()) fail("the values are not a JSON array");
  } else {
    std::istringstream in(axis.value);
    for (std::string item; std::getline(in, item, ',');) values.push_back(config::override_value({axis.path, item}));
  }
  if (values.empty()) fail("no values");
  axis.value = values.dump();
  axis.grid_axis = true;
  return axis;
}

Job parse_job(const std::string& text, const std::filesystem::path& file,
              const std::vector<Override>& overrides) {
  // A nameless job (text from a test) resolves relative corpus paths against the working directory.
  const std::filesystem::path base_dir =
      file.empty() ? std::filesystem::current_path() : std::filesystem::absolute(file).parent_path();
  config::Context ctx{file.string(), base_dir, {}};
  config::Json root = config::parse_json(text, ctx);
  if (root.is_object())
    for (const Override& change : overrides) config::apply_override(root, change, ctx);
  config::check_job(root, ctx);

  Job job;
  job.name = root.at("name").get<std::string>();
  job.description = root.value("description", std::string());
  job.file = file;
  job.runs = config::expand_runs(root, ctx);
  return job;
}

Job load_job(const std::filesystem::path& file, const std::vector<Override>& overrides) {
  return parse_job(config::read_file(file), file, overrides);
}

}  // namespace ellm
