// Run fields: the schema (one table row per field), the checks of single values, the typed
// conversion, and the cross-field rules of a merged run.
#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "internal.hpp"

namespace ellm::config {
namespace {

namespace fs = std::filesystem;
using Corpus = std::vector<fs::path>;

// ---- small text helpers ----

// Shortest text that reads back as the same double: 384, 0.5, 0.001, 1e-08.
std::string number_text(double value) {
  std::array<char, 32> buffer{};
  const auto end = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value).ptr;
  return std::string(buffer.data(), end);
}

// Concatenates text and numbers, the numbers in their shortest form.
std::string piece(std::string_view text) { return std::string(text); }
std::string piece(double number) { return number_text(number); }
template <class... Parts>
std::string cat(const Parts&... parts) {
  return (std::string() + ... + piece(parts));
}

// ---- enums: one name table each, used to check, parse and write them ----

constexpr std::array<std::pair<Norm, std::string_view>, 2> names_of(Norm) {
  return {{{Norm::LayerNorm, "layernorm"}, {Norm::RMSNorm, "rmsnorm"}}};
}
constexpr std::array<std::pair<Activation, std::string_view>, 2> names_of(Activation) {
  return {{{Activation::GELU, "gelu"}, {Activation::SwiGLU, "swiglu"}}};
}
constexpr std::array<std::pair<Positions, std::string_view>, 2> names_of(Positions) {
  return {{{Positions::Learned, "learned"}, {Positions::RoPE, "rope"}}};
}

template <class E>
std::string name_of(E value) {
  for (const auto& [candidate, name] : names_of(E{}))
    if (candidate == value) return std::string(name);
  throw std::logic_error("enum value without a name");
}

template <class E>
E enum_named(const std::string& name) {
  for (const auto& [value, candidate] : names_of(E{}))
    if (candidate == name) return value;
  throw std::logic_error("unchecked enum name " + name);
}

// ---- the schema ----

constexpr double kUnbounded = std::numeric_limits<double>::infinity();

// The allowed interval of a numeric field.
struct Bounds {
  double lo = -kUnbounded;
  bool lo_open = false;
  double hi = kUnbounded;
  bool hi_open = false;
  std::string_view why = {};  // shown with the rule when the reason is not obvious

  bool contains(double value) const {
    return (lo_open ? value > lo : value >= lo) && (hi_open ? value < hi : value <= hi);
  }
  // "must be >= 1", "must be in (0, 0.5]", "must be 256 (...)"
  std::string rule() const {
    std::string text = "must be ";
    if (lo == hi)
      text += number_text(lo);
    else if (hi == kUnbounded)
      text += (lo_open ? "> " : ">= ") + number_text(lo);
    else
      text += std::string("in ") + (lo_open ? "(" : "[") + number_text(lo) + ", " +
              number_text(hi) + (hi_open ? ")" : "]");
    return why.empty() ? text : text + " (" + std::string(why) + ")";
  }
};
Bounds at_least(double lo) { return {.lo = lo}; }
Bounds above(double lo) { return {.lo = lo, .lo_open = true}; }
Bounds between(double lo, double hi) { return {.lo = lo, .hi = hi}; }

struct FieldSpec {
  std::string section, key;
  std::function<void(const Json&, const std::string&, const Context&)> check;  // one value
  std::function<void(RunConfig&, const Json&, const Context&)> assign;         // of a checked value
  std::function<nlohmann::json(const RunConfig&)> read;  // as shown in as_json

  std::string path() const { return section + "." + key; }
};

template <class E>
std::vector<std::string> choices_of() {
  std::vector<std::string> choices;
  for (const auto& entry : names_of(E{})) choices.emplace_back(entry.second);
  return choices;
}

// Relative corpus paths belong to the job file, not to wherever the CLI was started.
fs::path resolve_corpus_path(const std::string& written, const Context& ctx) {
  return (ctx.base_dir / written).lexically_normal();
}

// ---- checks of one value ----

void check_bounds(const Bounds& bounds, const Json& value, const std::string& pointer,
                  const Context& ctx) {
  if (!bounds.contains(value.get<double>()))
    ctx.fail(pointer, bounds.rule() + ", got " + show(value));
}

// 10.0 is not accepted: a float where a count belongs is a mistake worth pointing out.
template <class T>
void check_integer(const Bounds& bounds, const Json& value, const std::string& pointer,
                   const Context& ctx) {
  if (!value.is_number_integer()) ctx.fail(pointer, "must be an integer, got " + describe(value));
  check_bounds(bounds, value, pointer, ctx);
  const double largest = static_cast<double>(std::numeric_limits<T>::max());
  if (value.get<double>() > largest)
    ctx.fail(pointer, cat("must be <= ", largest, ", got ") + show(value));
}

void check_number(const Bounds& bounds, const Json& value, const std::string& pointer,
                  const Context& ctx) {
  if (!value.is_number()) ctx.fail(pointer, "must be a number, got " + describe(value));
  check_bounds(bounds, value, pointer, ctx);
}

void check_choice(const std::vector<std::string>& choices, const Json& value,
                  const std::string& pointer, const Context& ctx) {
  if (value.is_string() && std::ranges::count(choices, value.get<std::string>()) > 0) return;
  std::vector<std::string> quoted;
  for (const std::string& choice : choices) quoted.push_back(quote(choice));
  ctx.fail(pointer, "must be one of " + join(quoted, ", ") + "; got " +
                        (value.is_string() ? show(value) : describe(value)));
}

// Every corpus file must be a readable, non-empty regular file, so a typo fails here and not
// after the MPI job has started.
void check_corpus_file(const Json& entry, const std::string& pointer, const Context& ctx) {
  if (!entry.is_string() || entry.get_ref<const std::string&>().empty())
    ctx.fail(pointer, "must be a non-empty file path, got " + describe(entry));
  const fs::path path = resolve_corpus_path(entry.get<std::string>(), ctx);
  const std::string quoted = quote(path.string());
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (error) ctx.fail(pointer, "cannot read corpus file " + quoted + ": " + error.message());
  if (!fs::is_regular_file(status))
    ctx.fail(pointer, "corpus file " + quoted + " is not a regular file");
  if (!std::ifstream(path, std::ios::binary))
    ctx.fail(pointer, "cannot read corpus file " + quoted + ": " + std::strerror(errno));
  if (fs::file_size(path, error) == 0) ctx.fail(pointer, "corpus file " + quoted + " is empty");
}

void check_corpus(const Json& value, const std::string& pointer, const Context& ctx) {
  if (value.is_string()) return check_corpus_file(value, pointer, ctx);
  if (!value.is_array() || value.empty())
    ctx.fail(pointer,
             "must be a file path or a non-empty array of file paths, got " + describe(value));
  for (std::size_t i = 0; i < value.size(); ++i)
    check_corpus_file(value[i], child(pointer, i), ctx);
}

template <class T>
void check_as(const Bounds& bounds, const Json& value, const std::string& pointer,
              const Context& ctx) {
  if constexpr (std::is_enum_v<T>)
    check_choice(choices_of<T>(), value, pointer, ctx);
  else if constexpr (std::is_same_v<T, Corpus>)
    check_corpus(value, pointer, ctx);
  else if constexpr (std::is_same_v<T, double>)
    check_number(bounds, value, pointer, ctx);
  else
    check_integer<T>(bounds, value, pointer, ctx);
}

template <class T>
T from_json(const Json& value, const Context& ctx) {
  if constexpr (std::is_enum_v<T>) {
    return enum_named<T>(value.get<std::string>());
  } else if constexpr (std::is_same_v<T, Corpus>) {
    Corpus paths;
    for (const Json& entry : value.is_array() ? value : Json::array({value}))
      paths.push_back(resolve_corpus_path(entry.get<std::string>(), ctx));
    return paths;
  } else {
    return value.get<T>();
  }
}

template <class T>
nlohmann::json to_json(const T& value) {
  if constexpr (std::is_enum_v<T>) {
    return name_of(value);
  } else if constexpr (std::is_same_v<T, Corpus>) {
    nlohmann::json paths = nlohmann::json::array();
    for (const fs::path& path : value) paths.push_back(path.string());
    return paths;
  } else {
    return value;
  }
}

// Makes the table rows of one section from member pointers, so a row names its field once.
template <class Section>
struct SectionRows {
  std::string name;
  Section RunConfig::*member;

  template <class T>
  FieldSpec operator()(std::string key, T Section::*field, Bounds bounds = {}) const {
    Section RunConfig::*section = member;
    return {name, std::move(key),
            [bounds](const Json& value, const std::string& pointer, const Context& ctx) {
              check_as<T>(bounds, value, pointer, ctx);
            },
            [section, field](RunConfig& run, const Json& value, const Context& ctx) {
              run.*section.*field = from_json<T>(value, ctx);
            },
            [section, field](const RunConfig& run) { return to_json(run.*section.*field); }};
  }
};

// Every run field, in the order as_json, messages and docs/JOBS.md list them.
const std::vector<FieldSpec>& fields() {
  static const SectionRows<ModelConfig> model{"model", &RunConfig::model};
  static const SectionRows<TrainingConfig> training{"training", &RunConfig::training};
  static const SectionRows<DataConfig> data{"data", &RunConfig::data};
  static const SectionRows<ParallelConfig> parallel{"parallel", &RunConfig::parallel};
  static const Bounds unit_interval{.lo = 0, .hi = 1, .hi_open = true};
  static const std::vector<FieldSpec> table = {
      model("vocab_size", &ModelConfig::vocab_size,
            {.lo = 256, .hi = 256, .why = "the vocabulary is byte-level"}),
      model("n_layers", &ModelConfig::n_layers, between(1, 1024)),
      model("d_model", &ModelConfig::d_model, between(1, 65536)),
      model("n_heads", &ModelConfig::n_heads, at_least(1)),
      model("d_ff", &ModelConfig::d_ff, at_least(1)),
      model("seq_len", &ModelConfig::seq_len, between(2, 1048576)),
      model("norm", &ModelConfig::norm),
      model("activation", &ModelConfig::activation),
      model("positions", &ModelConfig::positions),
      model("rope_base", &ModelConfig::rope_base, above(0)),
      model("norm_eps", &ModelConfig::norm_eps, above(0)),
      model("init_std", &ModelConfig::init_std, above(0)),
      training("steps", &TrainingConfig::steps, at_least(1)),
      training("batch_size", &TrainingConfig::batch_size, at_least(1)),
      training("lr", &TrainingConfig::lr, above(0)),
      training("min_lr", &TrainingConfig::min_lr, at_least(0)),
      training("warmup_steps", &TrainingConfig::warmup_steps, at_least(0)),
      training("weight_decay", &TrainingConfig::weight_decay, at_least(0)),
      training("beta1", &TrainingConfig::beta1, unit_interval),
      training("beta2", &TrainingConfig::beta2, unit_interval),
      training("adam_eps", &TrainingConfig::adam_eps, above(0)),
      training("grad_clip", &TrainingConfig::grad_clip, at_least(0)),
      training("seed", &TrainingConfig::seed, at_least(0)),
      training("eval_every", &TrainingConfig::eval_every, at_least(0)),
      training("eval_batches", &TrainingConfig::eval_batches, at_least(1)),
      training("log_every", &TrainingConfig::log_every, at_least(1)),
      training("warmup_iters", &TrainingConfig::warmup_iters, at_least(0)),
      data("corpus", &DataConfig::corpus),
      data("val_fraction", &DataConfig::val_fraction, {.lo = 0, .lo_open = true, .hi = 0.5}),
      parallel("dp", &ParallelConfig::dp, at_least(1)),
      parallel("bucket_mib", &ParallelConfig::bucket_mib, {.lo = 0, .lo_open = true, .hi = 1024}),
  };
  return table;
}

std::vector<std::string> section_names() {
  std::vector<std::string> names;
  for (const FieldSpec& spec : fields())
    if (names.empty() || names.back() != spec.section) names.push_back(spec.section);
  return names;
}

// The section's fields, as bare keys or as dotted paths; none for an unknown section.
std::vector<std::string> keys_of(const std::string& section, bool dotted) {
  std::vector<std::string> keys;
  for (const FieldSpec& spec : fields())
    if (spec.section == section) keys.push_back(dotted ? spec.path() : spec.key);
  return keys;
}

const FieldSpec* find_field(const std::string& path) {
  const auto& table = fields();
  const auto it = std::ranges::find(table, path, &FieldSpec::path);
  return it == table.end() ? nullptr : &*it;
}

const FieldSpec& field_at(const std::string& path) {
  if (const FieldSpec* spec = find_field(path)) return *spec;
  throw std::logic_error("unchecked run field " + path);
}

// ---- cross-field rules of a merged run ----

struct Origin {
  std::string pointer;
  std::size_t layer = 0;  // 1 + index into the layers; built-in defaults have no origin
};
using Origins = std::map<std::string, Origin>;

// Points at the most specific setting involved (a run's own value over "defaults", the first
// listed on a tie), so the message lands where the conflict was introduced.
std::string blamed_pointer(std::initializer_list<std::string_view> involved,
                           const Origins& origins) {
  Origin blamed;
  for (const std::string_view path : involved) {
    const auto it = origins.find(std::string(path));
    if (it != origins.end() && it->second.layer > blamed.layer) blamed = it->second;
  }
  return blamed.pointer;
}

// The rules between fields, checked on the merged run, first broken rule reported.
void check_consistency(const RunConfig& run, const Origins& origins, const Context& ctx) {
  const auto require = [&](bool holds, std::initializer_list<std::string_view> involved,
                           const std::string& message) {
    if (!holds) ctx.fail(blamed_pointer(involved, origins), message);
  };
  const ModelConfig& m = run.model;
  const TrainingConfig& t = run.training;
  require(m.d_model % m.n_heads == 0, {"model.n_heads", "model.d_model"},
          cat("d_model (", m.d_model, ") must be divisible by n_heads (", m.n_heads, ")"));
  // RoPE rotates pairs of channels within each head.
  require(m.positions != Positions::RoPE || (m.d_model / m.n_heads) % 2 == 0,
          {"model.n_heads", "model.d_model", "model.positions"},
          cat("with positions \"rope\" the head dimension d_model / n_heads (", m.d_model, " / ",
              m.n_heads, " = ", m.d_model / m.n_heads, ") must be even"));
  require(t.min_lr <= t.lr, {"training.min_lr", "training.lr"},
          cat("min_lr (", t.min_lr, ") must be <= lr (", t.lr, ")"));
  require(t.warmup_steps <= t.steps, {"training.warmup_steps", "training.steps"},
          cat("warmup_steps (", t.warmup_steps, ") must be <= steps (", t.steps, ")"));
  require(t.warmup_iters < t.steps, {"training.warmup_iters", "training.steps"},
          cat("warmup_iters (", t.warmup_iters, ") must be < steps (", t.steps,
              ") so that at least one step is measured"));
  require(t.batch_size % run.parallel.dp == 0, {"training.batch_size", "parallel.dp"},
          cat("batch_size (", t.batch_size, ") must be divisible by parallel.dp (", run.parallel.dp,
              ")"));
}

nlohmann::json resolved_json(const RunConfig& run) {
  nlohmann::json out = {{"name", run.name}};
  for (const FieldSpec& spec : fields()) out[spec.section][spec.key] = spec.read(run);
  return out;
}

}  // namespace

// ---- shared with job.cpp ----

void check_run_object(const Json& object, const std::string& pointer, bool named,
                      const Context& ctx) {
  for (const auto& [section, section_fields] : object.items()) {
    if (named && section == "name") continue;
    const std::string at = child(pointer, section);
    if (keys_of(section, false).empty()) {
      std::vector<std::string> allowed = section_names();
      if (named) allowed.insert(allowed.begin(), "name");
      ctx.fail(at, unknown_message("key", section, allowed));
    }
    if (!section_fields.is_object())
      ctx.fail(at, "must be an object, got " + describe(section_fields));
    for (const auto& [key, value] : section_fields.items()) {
      const FieldSpec* spec = find_field(section + "." + key);
      if (spec == nullptr)
        ctx.fail(child(at, key), unknown_message("key", key, keys_of(section, false)));
      spec->check(value, child(at, key), ctx);
    }
  }
}

void check_field_path(const std::string& path, const std::string& pointer, const Context& ctx) {
  const auto dot = path.find('.');
  if (dot == std::string::npos || path.find('.', dot + 1) != std::string::npos)
    ctx.fail(pointer, "must name a run field as SECTION.KEY, such as \"model.n_layers\"");
  const std::string section = path.substr(0, dot);
  if (keys_of(section, false).empty())
    ctx.fail(pointer, unknown_message("section", section, section_names()));
  if (find_field(path) == nullptr)
    ctx.fail(pointer, unknown_message("field", path, keys_of(section, true)));
}

void check_field_value(const std::string& path, const Json& value, const std::string& pointer,
                       const Context& ctx) {
  field_at(path).check(value, pointer, ctx);
}

RunConfig build_run(const std::string& name, const std::vector<Layer>& layers, const Context& ctx) {
  RunConfig run;
  run.name = name;
  Origins origins;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    for (const Setting& setting : layers[i]) {
      field_at(setting.path).assign(run, setting.value, ctx);
      origins[setting.path] = {setting.pointer, i + 1};
    }
  }
  check_consistency(run, origins, ctx);
  run.as_json = resolved_json(run);
  return run;
}

}  // namespace ellm::config
