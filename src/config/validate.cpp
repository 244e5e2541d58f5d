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
#include "io/hf.hpp"
#include "io/peft.hpp"
#include "model/plan.hpp"

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
constexpr std::array<std::pair<Activation, std::string_view>, 3> names_of(Activation) {
  return {{{Activation::GELU, "gelu"}, {Activation::SwiGLU, "swiglu"}, {Activation::GELUExact, "gelu_exact"}}};
}
constexpr std::array<std::pair<Bias, std::string_view>, 3> names_of(Bias) {
  return {{{Bias::All, "all"}, {Bias::None, "none"}, {Bias::QKV, "qkv"}}};
}
constexpr std::array<std::pair<Positions, std::string_view>, 5> names_of(Positions) {
  return {{{Positions::Learned, "learned"},
           {Positions::RoPE, "rope"},
           {Positions::Sinusoidal, "sinusoidal"},
           {Positions::ALiBi, "alibi"},
           {Positions::None, "none"}}};
}
constexpr std::array<std::pair<AttentionKind, std::string_view>, 3> names_of(AttentionKind) {
  return {{{AttentionKind::GQA, "gqa"}, {AttentionKind::MLA, "mla"}, {AttentionKind::NSA, "nsa"}}};
}
constexpr std::array<std::pair<Wiring, std::string_view>, 2> names_of(Wiring) {
  return {{{Wiring::Sequential, "sequential"}, {Wiring::Parallel, "parallel"}}};
}
constexpr std::array<std::pair<ChannelMixerKind, std::string_view>, 4> names_of(ChannelMixerKind) {
  return {{{ChannelMixerKind::Dense, "dense"},
           {ChannelMixerKind::MoE, "moe"},
           {ChannelMixerKind::RWKV, "rwkv"},
           {ChannelMixerKind::None, "none"}}};
}
constexpr std::array<std::pair<TokenMixerKind, std::string_view>, 3> names_of(TokenMixerKind) {
  return {{{TokenMixerKind::Attention, "attention"},
           {TokenMixerKind::Mamba, "mamba"},
           {TokenMixerKind::RWKV6, "rwkv6"}}};
}

constexpr std::array<std::pair<FinetuneMethod, std::string_view>, 7> names_of(FinetuneMethod) {
  return {{{FinetuneMethod::Full, "full"},
           {FinetuneMethod::Freeze, "freeze"},
           {FinetuneMethod::LoRA, "lora"},
           {FinetuneMethod::LoRAPlus, "lora_plus"},
           {FinetuneMethod::RSLoRA, "rslora"},
           {FinetuneMethod::DoRA, "dora"},
           {FinetuneMethod::PiSSA, "pissa"}}};
}

constexpr std::array<std::pair<DataFormat, std::string_view>, 3> names_of(DataFormat) {
  return {{{DataFormat::Text, "text"},
           {DataFormat::Tokens, "tokens"},
           {DataFormat::Instructions, "instructions"}}};
}

constexpr std::array<std::pair<MappingPolicy, std::string_view>, 3> names_of(MappingPolicy) {
  return {{{MappingPolicy::Inherit, "inherit"},
           {MappingPolicy::Compact, "compact"},
           {MappingPolicy::Scatter, "scatter"}}};
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
  // As shown in as_json; empty for the per-layer description, which build_run copies as given.
  std::function<nlohmann::json(const RunConfig&)> read;
  // A block field: a model field that model.layer_pattern and model.layer_overrides may set for
  // single layers. Every other model field is model-wide.
  bool per_layer = false;

  std::string path() const { return section + "." + key; }
};

// Marks a model field as a block field.
FieldSpec per_layer(FieldSpec spec) {
  spec.per_layer = true;
  return spec;
}

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

void check_boolean(const Json& value, const std::string& pointer, const Context& ctx) {
  if (!value.is_boolean()) ctx.fail(pointer, "must be true or false, got " + describe(value));
}

void check_string(const Json& value, const std::string& pointer, const Context& ctx) {
  if (!value.is_string()) ctx.fail(pointer, "must be a string, got " + describe(value));
}

void check_choice(const std::vector<std::string>& choices, const Json& value,
                  const std::string& pointer, const Context& ctx) {
  if (value.is_string() && std::ranges::count(choices, value.get<std::string>()) > 0) return;
  std::vector<std::string> quoted;
  for (const std::string& choice : choices) quoted.push_back(quote(choice));
  ctx.fail(pointer, "must be one of " + join(quoted, ", ") + "; got " +
                        (value.is_string() ? show(value) : describe(value)));
}

// Every corpus (or tokenizer) file must be a readable, non-empty regular file, so a typo fails
// here and not after the MPI job has started.
void check_corpus_file(const Json& entry, const std::string& pointer, const Context& ctx,
                       const std::string& noun = "corpus file") {
  if (!entry.is_string() || entry.get_ref<const std::string&>().empty())
    ctx.fail(pointer, "must be a non-empty file path, got " + describe(entry));
  const fs::path path = resolve_corpus_path(entry.get<std::string>(), ctx);
  const std::string quoted = quote(path.string());
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (error) ctx.fail(pointer, "cannot read " + noun + " " + quoted + ": " + error.message());
  if (!fs::is_regular_file(status))
    ctx.fail(pointer, noun + " " + quoted + " is not a regular file");
  if (!std::ifstream(path, std::ios::binary))
    ctx.fail(pointer, "cannot read " + noun + " " + quoted + ": " + std::strerror(errno));
  if (fs::file_size(path, error) == 0) ctx.fail(pointer, noun + " " + quoted + " is empty");
}

// data.tokenizer: "bytes", or {"sentencepiece": "path/tokenizer.model"}.
void check_tokenizer(const Json& value, const std::string& pointer, const Context& ctx) {
  if (value == Json("bytes")) return;
  if (!value.is_object() || value.size() != 1 || !value.contains("sentencepiece"))
    ctx.fail(pointer, "must be \"bytes\" or {\"sentencepiece\": \"path/tokenizer.model\"}, got " +
                          describe(value));
  check_corpus_file(value["sentencepiece"], child(pointer, "sentencepiece"), ctx,
                    "SentencePiece model");
}

void check_corpus(const Json& value, const std::string& pointer, const Context& ctx) {
  if (value.is_string()) return check_corpus_file(value, pointer, ctx);
  if (!value.is_array() || value.empty())
    ctx.fail(pointer,
             "must be a file path or a non-empty array of file paths, got " + describe(value));
  for (std::size_t i = 0; i < value.size(); ++i)
    check_corpus_file(value[i], child(pointer, i), ctx);
}

// A directory or file path (empty: none); relative to the job file like corpus paths. What it
// must contain is checked where it is used (model.from_hf: build_run).
void check_path(const Json& value, const std::string& pointer, const Context& ctx) {
  if (!value.is_string()) ctx.fail(pointer, "must be a path (a string), got " + describe(value));
}

void check_string_array(const Json& value, const std::string& pointer, const Context& ctx) {
  if (!value.is_array() || value.empty())
    ctx.fail(pointer, "must be a non-empty array of strings, got " + describe(value));
  for (std::size_t i = 0; i < value.size(); ++i)
    if (!value[i].is_string()) ctx.fail(child(pointer, i), "must be a string, got " + describe(value[i]));
}

template <class T>
void check_as(const Bounds& bounds, const Json& value, const std::string& pointer,
              const Context& ctx) {
  if constexpr (std::is_enum_v<T>)
    check_choice(choices_of<T>(), value, pointer, ctx);
  else if constexpr (std::is_same_v<T, Corpus>)
    check_corpus(value, pointer, ctx);
  else if constexpr (std::is_same_v<T, TokenizerConfig>)
    check_tokenizer(value, pointer, ctx);
  else if constexpr (std::is_same_v<T, fs::path>)
    check_path(value, pointer, ctx);
  else if constexpr (std::is_same_v<T, double>)
    check_number(bounds, value, pointer, ctx);
  else if constexpr (std::is_same_v<T, bool>)
    check_boolean(value, pointer, ctx);
  else if constexpr (std::is_same_v<T, std::string>)
    check_string(value, pointer, ctx);
  else if constexpr (std::is_same_v<T, std::vector<std::string>>)
    check_string_array(value, pointer, ctx);
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
  } else if constexpr (std::is_same_v<T, TokenizerConfig>) {
    if (value.is_string()) return TokenizerConfig{};  // "bytes"
    return TokenizerConfig{resolve_corpus_path(value["sentencepiece"].get<std::string>(), ctx)};
  } else if constexpr (std::is_same_v<T, fs::path>) {
    const std::string written = value.get<std::string>();
    return written.empty() ? fs::path() : resolve_corpus_path(written, ctx);
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
  } else if constexpr (std::is_same_v<T, TokenizerConfig>) {
    if (value.bytes()) return "bytes";
    return {{"sentencepiece", value.sentencepiece.string()}};
  } else if constexpr (std::is_same_v<T, fs::path>) {
    return value.string();
  } else {
    return value;
  }
}

// Makes the table rows of one section from member pointers, so a row names its field once. A
// section is where `get` finds it in the run (finetune lives in the model, which declares it).
template <class Section>
struct SectionRows {
  std::string name;
  Section& (*get)(RunConfig&);

  template <class T>
  FieldSpec operator()(std::string key, T Section::*field, Bounds bounds = {}) const {
    Section& (*section)(RunConfig&) = get;
    return {name, std::move(key),
            [bounds](const Json& value, const std::string& pointer, const Context& ctx) {
              check_as<T>(bounds, value, pointer, ctx);
            },
            [section, field](RunConfig& run, const Json& value, const Context& ctx) {
              section(run).*field = from_json<T>(value, ctx);
            },
            [section, field](const RunConfig& run) {
              return to_json(section(const_cast<RunConfig&>(run)).*field);  // read only
            }};
  }
};
template <auto Member>
auto& member_of(RunConfig& run) { return run.*Member; }
FinetuneConfig& finetune_of(RunConfig& run) { return run.model.finetune; }

// The per-layer description: checked by the functions below the table, resolved by build_run
// once the run is merged, since every layer starts from the merged model-level fields.
void check_layer_pattern(const Json& value, const std::string& pointer, const Context& ctx);
void check_layer_overrides(const Json& value, const std::string& pointer, const Context& ctx);
void assign_nothing(RunConfig& /*run*/, const Json& /*value*/, const Context& /*ctx*/) {}

// Every run field, in the order as_json, messages and docs/JOBS.md list them.
const std::vector<FieldSpec>& fields() {
  static const SectionRows<ModelConfig> model{"model", member_of<&RunConfig::model>};
  static const SectionRows<TrainingConfig> training{"training", member_of<&RunConfig::training>};
  static const SectionRows<DataConfig> data{"data", member_of<&RunConfig::data>};
  static const SectionRows<ParallelConfig> parallel{"parallel", member_of<&RunConfig::parallel>};
  static const SectionRows<TopologyConfig> topology{"topology", member_of<&RunConfig::topology>};
  static const SectionRows<MetricsConfig> metrics{"metrics", member_of<&RunConfig::metrics>};
  static const SectionRows<CheckpointConfig> checkpoint{"checkpoint", member_of<&RunConfig::checkpoint>};
  static const SectionRows<InferenceConfig> inference{"inference", member_of<&RunConfig::inference>};
  static const SectionRows<FinetuneConfig> finetune{"finetune", finetune_of};
  static const Bounds unit_interval{.lo = 0, .hi = 1, .hi_open = true};
  static const std::vector<FieldSpec> table = {
      // at least the data's vocabulary: checked with the data (data/corpus.cpp, docs/DATA.md)
      model("vocab_size", &ModelConfig::vocab_size, between(2, 16777216)),
      model("n_layers", &ModelConfig::n_layers, between(1, 1024)),
      model("d_model", &ModelConfig::d_model, between(1, 65536)),
      model("n_heads", &ModelConfig::n_heads, at_least(1)),
      per_layer(model("d_ff", &ModelConfig::d_ff, at_least(1))),
      model("seq_len", &ModelConfig::seq_len, between(2, 1048576)),
      model("norm", &ModelConfig::norm),
      per_layer(model("activation", &ModelConfig::activation)),
      per_layer(model("wiring", &ModelConfig::wiring)),
      model("positions", &ModelConfig::positions),
      model("rope_base", &ModelConfig::rope_base, above(0)),
      per_layer(model("rotary_pct", &ModelConfig::rotary_pct,
                      {.lo = 0, .lo_open = true, .hi = 1})),
      model("norm_eps", &ModelConfig::norm_eps, above(0)),
      model("init_std", &ModelConfig::init_std, above(0)),
      model("bias", &ModelConfig::bias),
      model("tie_embeddings", &ModelConfig::tie_embeddings),
      model("from_hf", &ModelConfig::from_hf),
      model("init_from", &ModelConfig::init_from),
      per_layer(model("attention", &ModelConfig::attention)),
      per_layer(model("n_kv_heads", &ModelConfig::n_kv_heads, at_least(0))),
      per_layer(model("window", &ModelConfig::window, at_least(0))),
      per_layer(model("mla_kv_latent", &ModelConfig::mla_kv_latent, at_least(1))),
      per_layer(model("mla_q_latent", &ModelConfig::mla_q_latent, at_least(0))),
      per_layer(model("mla_rope_dim", &ModelConfig::mla_rope_dim, at_least(2))),
      per_layer(model("nsa_block", &ModelConfig::nsa_block, at_least(1))),
      per_layer(model("nsa_stride", &ModelConfig::nsa_stride, at_least(1))),
      per_layer(model("nsa_select_block", &ModelConfig::nsa_select_block, at_least(1))),
      per_layer(model("nsa_select_n", &ModelConfig::nsa_select_n, at_least(1))),
      per_layer(model("nsa_window", &ModelConfig::nsa_window, at_least(1))),
      per_layer(model("mlp", &ModelConfig::mlp)),
      per_layer(model("moe_experts", &ModelConfig::moe_experts, between(1, 4096))),
      per_layer(model("moe_top_k", &ModelConfig::moe_top_k, at_least(1))),
      per_layer(model("moe_shared_experts", &ModelConfig::moe_shared_experts, at_least(0))),
      per_layer(model("moe_d_ff", &ModelConfig::moe_d_ff, at_least(0))),
      per_layer(model("moe_renormalize", &ModelConfig::moe_renormalize)),
      per_layer(model("moe_aux_coeff", &ModelConfig::moe_aux_coeff, at_least(0))),
      per_layer(model("moe_z_coeff", &ModelConfig::moe_z_coeff, at_least(0))),
      per_layer(model("moe_capacity_factor", &ModelConfig::moe_capacity_factor, at_least(0))),
      per_layer(model("token_mixer", &ModelConfig::token_mixer)),
      per_layer(model("mamba_d_state", &ModelConfig::mamba_d_state, between(1, 1024))),
      per_layer(model("mamba_expand", &ModelConfig::mamba_expand, between(1, 64))),
      per_layer(model("mamba_d_conv", &ModelConfig::mamba_d_conv, between(1, 64))),
      per_layer(model("mamba_dt_rank", &ModelConfig::mamba_dt_rank, at_least(0))),
      per_layer(model("mamba_chunk", &ModelConfig::mamba_chunk, at_least(1))),
      per_layer(model("rwkv_head_size", &ModelConfig::rwkv_head_size, between(1, 1024))),
      per_layer(model("rwkv_chunk", &ModelConfig::rwkv_chunk, between(1, 256))),
      per_layer(model("rwkv_mix_lora", &ModelConfig::rwkv_mix_lora, at_least(1))),
      per_layer(model("rwkv_decay_lora", &ModelConfig::rwkv_decay_lora, at_least(1))),
      {"model", "layer_pattern", check_layer_pattern, assign_nothing, {}},
      {"model", "layer_overrides", check_layer_overrides, assign_nothing, {}},
      training("steps", &TrainingConfig::steps, at_least(0)),  // 0: evaluation only
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
      training("export_hf", &TrainingConfig::export_hf),
      data("corpus", &DataConfig::corpus),
      data("val_fraction", &DataConfig::val_fraction, {.lo = 0, .lo_open = true, .hi = 0.5}),
      data("format", &DataConfig::format),
      data("tokenizer", &DataConfig::tokenizer),
      parallel("dp", &ParallelConfig::dp, at_least(1)),
      parallel("tp", &ParallelConfig::tp, at_least(1)),
      parallel("bucket_mib", &ParallelConfig::bucket_mib, {.lo = 1.0 / 1024, .hi = 1024}),
      parallel("overlap", &ParallelConfig::overlap),
      parallel("zero1", &ParallelConfig::zero1),
      parallel("sequence_parallel", &ParallelConfig::sequence_parallel),
      parallel("ep", &ParallelConfig::ep, at_least(1)),
      parallel("watchdog_s", &ParallelConfig::watchdog_s, at_least(0)),
      topology("policy", &TopologyConfig::policy),
      // RAPL counters wrap within minutes at full load: they must be read at least once a minute.
      metrics("sample_period_ms", &MetricsConfig::sample_period_ms,
              {.lo = 0, .hi = 60000, .why = "0 turns sampling off; energy counters need a read every 60 s"}),
      metrics("p_idle_w", &MetricsConfig::p_idle_w, at_least(0)),
      metrics("p_max_w", &MetricsConfig::p_max_w, at_least(0)),
      checkpoint("save", &CheckpointConfig::save),
      checkpoint("every", &CheckpointConfig::every, at_least(0)),
      checkpoint("optimizer", &CheckpointConfig::optimizer),
      checkpoint("dir", &CheckpointConfig::dir),
      inference("formats", &InferenceConfig::formats),  // names checked by bench-infer
      inference("prompt_tokens", &InferenceConfig::prompt_tokens, at_least(1)),
      inference("gen_tokens", &InferenceConfig::gen_tokens, at_least(1)),
      inference("repetitions", &InferenceConfig::repetitions, at_least(1)),
      inference("warmup", &InferenceConfig::warmup, at_least(0)),
      inference("batch", &InferenceConfig::batch, between(1, 4096)),
      inference("quality_windows", &InferenceConfig::quality_windows, at_least(0)),
      finetune("method", &FinetuneConfig::method),
      finetune("rank", &FinetuneConfig::rank, at_least(1)),
      finetune("alpha", &FinetuneConfig::alpha, above(0)),
      finetune("dropout", &FinetuneConfig::dropout, unit_interval),
      finetune("target_modules", &FinetuneConfig::target_modules),
      finetune("freeze_last_k", &FinetuneConfig::freeze_last_k, at_least(1)),
      finetune("freeze_modules", &FinetuneConfig::freeze_modules),
      finetune("lora_plus_ratio", &FinetuneConfig::lora_plus_ratio, above(0)),
      finetune("pissa_svd_iters", &FinetuneConfig::pissa_svd_iters, between(0, 100)),
      finetune("adapter_from", &FinetuneConfig::adapter_from),
      finetune("save_adapter", &FinetuneConfig::save_adapter),
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

// ---- the per-layer description: model.layer_pattern and model.layer_overrides ----

// The block fields, in table order: what a pattern entry or an override may set.
const std::vector<std::string>& block_keys() {
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> out;
    for (const FieldSpec& spec : fields())
      if (spec.per_layer) out.push_back(spec.key);
    return out;
  }();
  return keys;
}

// One pattern entry or override: block fields only, each checked like the model field it sets.
void check_block_fields(const Json& value, const std::string& pointer, const Context& ctx) {
  if (!value.is_object())
    ctx.fail(pointer, "must be an object of block fields, got " + describe(value));
  for (const auto& [key, field_value] : value.items()) {
    const std::string at = child(pointer, key);
    const FieldSpec* spec = find_field("model." + key);
    if (spec == nullptr) ctx.fail(at, unknown_message("key", key, block_keys()));
    if (!spec->per_layer)
      ctx.fail(at,
               "model-wide key; it is the same in every layer, so set it in \"model\" itself "
               "(allowed per layer: " +
                   join(block_keys(), ", ") + ")");
    spec->check(field_value, at, ctx);
  }
}

// A layer_overrides key names a layer the way a person writes it: "0", "7", "12".
bool is_layer_index(const std::string& key) {
  return !key.empty() && std::ranges::all_of(key, [](char c) { return c >= '0' && c <= '9'; }) &&
         (key.size() == 1 || key.front() != '0');
}

void check_layer_pattern(const Json& value, const std::string& pointer, const Context& ctx) {
  if (!value.is_array() || value.empty())
    ctx.fail(pointer,
             "must be a non-empty array of objects of block fields (layer l takes entry "
             "l % length), got " +
                 describe(value));
  for (std::size_t i = 0; i < value.size(); ++i)
    check_block_fields(value[i], child(pointer, i), ctx);
}

void check_layer_overrides(const Json& value, const std::string& pointer, const Context& ctx) {
  if (!value.is_object())
    ctx.fail(pointer,
             "must be an object mapping layer numbers (\"0\", \"1\", ...) to objects of "
             "block fields, got " +
                 describe(value));
  for (const auto& [key, fields_of_layer] : value.items()) {
    if (!is_layer_index(key))
      ctx.fail(child(pointer, key),
               "not a layer index; the keys of layer_overrides are layer "
               "numbers \"0\", \"1\", ... (decimal digits, no sign or leading zeros)");
    check_block_fields(fields_of_layer, child(pointer, key), ctx);
  }
}

struct Origin {
  std::string pointer;
  std::size_t layer = 0;  // 1 + index into the layers; built-in defaults have no origin
  // Set by a pattern entry or an override: for its layers it is more specific than a model-level
  // value from the same merge layer.
  bool per_layer = false;

  bool more_specific_than(const Origin& other) const {
    return std::pair(layer, per_layer) > std::pair(other.layer, other.per_layer);
  }
};
using Origins = std::map<std::string, Origin>;

// The per-layer description as merged (the last value of each field), keyed by field path.
using LayerDescription = std::map<std::string, Json>;

// Fills model.layers when the run describes its layers, and returns each layer's origins: the
// run's, with the block fields a pattern entry or an override set pointing there. Nothing when
// the run has no per-layer description (every layer is the model itself).
std::vector<Origins> resolve_layers(ModelConfig& model, const LayerDescription& given,
                                    const Origins& origins, const Context& ctx) {
  const auto pattern = given.find("model.layer_pattern");
  const auto overrides = given.find("model.layer_overrides");
  if (pattern == given.end() && overrides == given.end()) return {};
  if (overrides != given.end()) {
    for (const auto& [key, ignored] : overrides->second.items()) {
      int index = 0;  // too large for an int is out of range too
      const std::errc error = std::from_chars(key.data(), key.data() + key.size(), index).ec;
      if (error != std::errc() || index >= model.n_layers)
        ctx.fail(child(origins.at(overrides->first).pointer, key),
                 cat("layer ", key, " does not exist: n_layers is ", model.n_layers,
                     ", so the layers are numbered 0 to ", model.n_layers - 1));
    }
  }
  std::vector<ModelConfig> layers;
  std::vector<Origins> layer_origins;
  RunConfig scratch;  // FieldSpec::assign writes a run
  for (int l = 0; l < model.n_layers; ++l) {
    scratch.model = model;
    Origins& set_by = layer_origins.emplace_back(origins);
    const auto apply = [&](const Json& fields_of_layer, const std::string& pointer,
                           const Origin& described_at) {
      for (const auto& [key, value] : fields_of_layer.items()) {
        const std::string path = "model." + key;
        field_at(path).assign(scratch, value, ctx);
        set_by[path] = {child(pointer, key), described_at.layer, true};
      }
    };
    if (pattern != given.end()) {
      const std::size_t entry = static_cast<std::size_t>(l) % pattern->second.size();
      const Origin& at = origins.at(pattern->first);
      apply(pattern->second[entry], child(at.pointer, entry), at);
    }
    if (overrides != given.end() && overrides->second.contains(std::to_string(l))) {
      const Origin& at = origins.at(overrides->first);
      apply(overrides->second.at(std::to_string(l)), child(at.pointer, std::to_string(l)), at);
    }
    layers.push_back(scratch.model);
  }
  model.layers = std::move(layers);
  return layer_origins;
}

// ---- cross-field rules of a merged run ----

// Points at the most specific setting involved (a run's own value over "defaults", a layer's
// own value over the model-level one from the same place, the first listed on a tie), so the
// message lands where the conflict was introduced.
std::string blamed_pointer(std::initializer_list<std::string_view> involved,
                           const Origins& origins) {
  Origin blamed;
  for (const std::string_view path : involved) {
    const auto it = origins.find(std::string(path));
    if (it != origins.end() && it->second.more_specific_than(blamed)) blamed = it->second;
  }
  return blamed.pointer;
}

// The layers to check: every resolved layer, or the model itself when all layers are the same.
int layer_count(const ModelConfig& m) {
  return m.layers.empty() ? 1 : static_cast<int>(m.layers.size());
}

// A block's own rules: the attention variant's (docs/ATTENTION.md says why each exists) and the
// mixture of experts' (docs/MOE.md).
template <class Require>
void check_block_rules(const ModelConfig& m, const Require& require) {
  // The attention variant's rules bind attention layers only: positions and heads mean nothing
  // to a Mamba layer (docs/ATTENTION_FREE.md).
  const bool attention = m.token_mixer == TokenMixerKind::Attention;
  const bool gqa = attention && m.attention == AttentionKind::GQA,
             mla = attention && m.attention == AttentionKind::MLA,
             nsa = attention && m.attention == AttentionKind::NSA;
  require(m.n_kv_heads == 0 || m.n_heads % m.n_kv_heads == 0, {"model.n_kv_heads", "model.n_heads"},
          cat("n_heads (", m.n_heads, ") must be divisible by n_kv_heads (", m.n_kv_heads,
              "); 0 means n_kv_heads = n_heads (MHA)"));
  require(!mla || m.n_kv_heads == 0, {"model.n_kv_heads", "model.attention"},
          "MLA has no kv heads of its own (its keys and values come from one latent): leave n_kv_heads at 0");
  require(gqa || !attention || m.window == 0, {"model.window", "model.attention"},
          "window applies to attention \"gqa\" (sliding-window attention); NSA's window branch is nsa_window");
  require(m.positions != Positions::ALiBi || gqa || !attention, {"model.positions", "model.attention"},
          "positions \"alibi\" is supported with attention \"gqa\" only");
  require(!mla || m.positions == Positions::RoPE, {"model.positions", "model.attention"},
          "attention \"mla\" uses decoupled RoPE: positions must be \"rope\"");
  require(!mla || m.mla_rope_dim % 2 == 0, {"model.mla_rope_dim"},
          cat("mla_rope_dim (", m.mla_rope_dim, ") must be even: RoPE rotates pairs"));
  require(!nsa || m.nsa_block % m.nsa_stride == 0, {"model.nsa_block", "model.nsa_stride"},
          cat("nsa_block (", m.nsa_block, ") must be a multiple of nsa_stride (", m.nsa_stride,
              "): compression blocks overlap by whole strides"));
  require(!nsa || m.nsa_select_block % m.nsa_stride == 0,
          {"model.nsa_select_block", "model.nsa_stride"},
          cat("nsa_select_block (", m.nsa_select_block, ") must be a multiple of nsa_stride (",
              m.nsa_stride, ") to map compressed scores onto selection blocks"));
  require(!nsa || m.nsa_select_n >= 3, {"model.nsa_select_n"},
          cat("nsa_select_n (", m.nsa_select_n,
              ") must be at least 3: the first block and two local blocks are always selected"));
  require(m.mlp != ChannelMixerKind::None || m.wiring == Wiring::Sequential,
          {"model.mlp", "model.wiring"},
          "a block without a channel mixer (mlp \"none\") has one branch: wiring must be "
          "\"sequential\"");
  require(m.token_mixer != TokenMixerKind::RWKV6 || m.d_model % m.rwkv_head_size == 0,
          {"model.rwkv_head_size", "model.d_model", "model.token_mixer"},
          cat("d_model (", m.d_model, ") must be divisible by rwkv_head_size (", m.rwkv_head_size,
              "): RWKV-6 splits the width into heads of that size"));
  require(m.bias == Bias::All || (gqa && m.mlp == ChannelMixerKind::Dense),
          {"model.bias", "model.attention", "model.mlp"},
          "bias \"none\" and \"qkv\" are supported with attention \"gqa\" and mlp \"dense\" only");
  require(m.activation != Activation::GELUExact || m.mlp == ChannelMixerKind::Dense,
          {"model.activation", "model.mlp"},
          "activation \"gelu_exact\" is supported with mlp \"dense\" only");
  require(m.mlp != ChannelMixerKind::MoE || m.moe_top_k <= m.moe_experts,
          {"model.moe_top_k", "model.moe_experts"},
          cat("moe_top_k (", m.moe_top_k, ") must be at most moe_experts (", m.moe_experts,
              "): each token goes to that many different experts"));
}

// What a tensor-parallel split needs: whole heads, whole slices of d_ff and of the vocabulary.
// `require_in(l)` checks a rule of layer l.
template <class Require, class LayerRequire>
void check_tensor_parallel(const ModelConfig& m, int tp, bool sequence_parallel,
                           const Require& require, const LayerRequire& require_in) {
  if (tp == 1) return;
  require(m.n_heads % tp == 0, {"parallel.tp", "model.n_heads"},
          cat("n_heads (", m.n_heads, ") must be divisible by tp (", tp, ")"));
  for (int l = 0; l < layer_count(m); ++l) {
    const ModelConfig& b = m.layer(l);
    const auto require_l = require_in(l);
    const int kv = b.kv_heads();
    // MLA's keys and values come from a latent every rank computes: no kv heads to split.
    const bool attention = b.token_mixer == TokenMixerKind::Attention;
    if (attention && b.attention == AttentionKind::GQA)
      require_l(
          kv >= tp ? kv % tp == 0 : tp % kv == 0, {"parallel.tp", "model.n_kv_heads"},
          cat("kv heads (", kv, ") and tp (", tp, ") must divide one another: each rank keeps ",
              "whole kv heads, or one replicated over tp / kv ranks"));
    if (attention && b.attention == AttentionKind::NSA)
      require_l(kv % tp == 0, {"parallel.tp", "model.n_kv_heads", "model.attention"},
                cat("with attention \"nsa\" the kv heads (", kv, ") must be divisible by tp (", tp,
                    "): each rank keeps whole kv groups (NSA's selection is per group, so kv heads "
                    "are not replicated)"));
    // A Mamba layer splits its inner channels mamba_expand·d_model over the ranks: whole, since
    // d_model is a multiple of n_heads, which tp divides (docs/ATTENTION_FREE.md).
    if (b.token_mixer == TokenMixerKind::RWKV6)
      require_l(b.rwkv_heads() % tp == 0, {"parallel.tp", "model.rwkv_head_size", "model.token_mixer"},
                cat("with token_mixer \"rwkv6\" the heads d_model / rwkv_head_size (", b.rwkv_heads(),
                    ") must be divisible by tp (", tp, "): each rank keeps whole heads"));
    require_l(b.mlp != ChannelMixerKind::MoE, {"parallel.tp", "model.mlp"},
              cat("mixture-of-experts layers run with tp = 1 (tensor parallelism inside experts is ",
                  "not supported); got tp = ", tp));
    require_l(b.mlp == ChannelMixerKind::None || b.d_ff % tp == 0, {"parallel.tp", "model.d_ff"},
              cat("d_ff (", b.d_ff, ") must be divisible by tp (", tp, ")"));
  }
  require(m.vocab_size % tp == 0, {"parallel.tp"},
          cat("the vocabulary (", m.vocab_size, ") must be divisible by tp (", tp,
              "): each rank holds an equal slice of the embedding and the head"));
  require(!sequence_parallel || m.seq_len % tp == 0, {"parallel.sequence_parallel", "model.seq_len"},
          cat("sequence parallelism splits every sequence's tokens over the tp ranks: seq_len (",
              m.seq_len, ") must be divisible by tp (", tp, ")"));
}

// What fine-tuning needs (docs/PEFT.md): blocks to freeze that exist; adapters only on the
// linears of GQA attention and the dense MLP, named targets the model has, a rank no larger
// than either side of any target.
template <class Require, class LayerRequire>
void check_finetune(const ModelConfig& m, int tp, const Require& require,
                    const LayerRequire& require_in) {
  const FinetuneConfig& f = m.finetune;
  if (f.method == FinetuneMethod::Freeze)
    require(f.freeze_last_k <= m.n_layers, {"finetune.freeze_last_k", "model.n_layers"},
            cat("freeze_last_k (", f.freeze_last_k, ") must be at most n_layers (", m.n_layers,
                "): it is the number of last blocks that train"));
  static const std::vector<std::string> parts = {"attn", "mlp", "norm", "all"};
  for (const std::string& part : f.freeze_modules)
    require(std::ranges::count(parts, part) > 0, {"finetune.freeze_modules"},
            cat("unknown block part \"", part, "\"; allowed: ", join(parts, ", ")));
  require(!f.freeze_modules.empty(), {"finetune.freeze_modules"}, "must name at least one block part (or \"all\")");
  require(f.method == FinetuneMethod::Freeze || f.freeze_modules == std::vector<std::string>{"all"},
          {"finetune.freeze_modules", "finetune.method"},
          cat("freeze_modules applies to method \"freeze\"; method is \"", name_of(f.method), "\""));
  for (const auto& [path, given] : {std::pair{"finetune.adapter_from", !f.adapter_from.empty()},
                                    std::pair{"finetune.save_adapter", !f.save_adapter.empty()}})
    require(!given || f.adapters(), {path, "finetune.method"},
            cat(path, " needs an adapter method (\"lora\", \"lora_plus\", \"rslora\", \"dora\", \"pissa\"); ",
                "method is \"", name_of(f.method), "\""));
  if (!f.adapters()) return;
  static const std::vector<std::string> known = {"q", "k", "v", "o", "fc", "gate", "up", "down", "all"};
  for (const std::string& t : f.target_modules)
    require(std::ranges::count(known, t) > 0, {"finetune.target_modules"},
            cat("unknown target module \"", t, "\"; allowed: ", join(known, ", ")));
  // PEFT's DoRA with dropout also recomputes the base on the dropped input (y gains
  // (g − 1)·W₀·x̃): not implemented here.
  require(f.dropout == 0 || f.method != FinetuneMethod::DoRA, {"finetune.dropout", "finetune.method"},
          cat("dropout (", f.dropout, ") must be 0 with method \"dora\" (DoRA's dropout, which PEFT applies ",
              "to the base's input too, is not implemented)"));
  for (int l = 0; l < layer_count(m); ++l) {
    const ModelConfig& b = m.layer(l);
    const auto require_l = require_in(l);
    require_l(b.token_mixer == TokenMixerKind::Attention && b.attention == AttentionKind::GQA &&
                  b.mlp == ChannelMixerKind::Dense,
              {"finetune.method", "model.attention", "model.token_mixer", "model.mlp"},
              "adapters (method \"" + name_of(f.method) + "\") are declared on the linears of "
              "attention \"gqa\" and mlp \"dense\" only");
    const bool swiglu = b.activation == Activation::SwiGLU;
    for (const char* half : {"gate", "up"})
      require_l(swiglu || std::ranges::count(f.target_modules, half) == 0,
                {"finetune.target_modules", "model.activation"},
                cat("target module \"", half, "\" is a half of SwiGLU's first projection; ",
                    "this model's activation is \"", name_of(b.activation), "\" (use \"fc\")"));
    require_l(!swiglu || std::ranges::count(f.target_modules, "fc") == 0,
              {"finetune.target_modules", "model.activation"},
              "with activation \"swiglu\" the first MLP projection is \"gate\" and \"up\", not \"fc\"");
    const int C = b.d_model, q = b.n_heads * b.head_dim(), kv = b.kv_heads() * b.head_dim();
    const std::vector<std::pair<std::string, int>> narrowest = {
        {"q", std::min(C, q)},  {"k", std::min(C, kv)},      {"v", std::min(C, kv)},
        {"o", std::min(C, q)},  {"fc", std::min(C, b.d_ff)}, {"gate", std::min(C, b.d_ff)},
        {"up", std::min(C, b.d_ff)}, {"down", std::min(C, b.d_ff)}};
    for (const auto& [name, width] : narrowest)
      require_l(!f.targets(name) || f.rank <= width, {"finetune.rank", "finetune.target_modules"},
                cat("rank (", f.rank, ") must be at most min(in, out) = ", width,
                    " of target module \"", name, "\""));
    require_l(tp <= b.kv_heads() || (!f.targets("k") && !f.targets("v")),
              {"finetune.target_modules", "parallel.tp", "model.n_kv_heads"},
              cat("adapters on k or v need tp (", tp, ") <= kv heads (", b.kv_heads(),
                  "): a kv head replicated over tensor-parallel ranks would count its adapter's ",
                  "gradient once per copy"));
  }
}

// What expert parallelism needs: MoE layers whose experts split evenly, inside the data-parallel
// group, with the optimizer state whole (docs/MOE.md).
template <class Require, class LayerRequire>
void check_expert_parallel(const ModelConfig& m, const ParallelConfig& p, const Require& require,
                           const LayerRequire& require_in) {
  if (p.ep == 1) return;
  require(p.dp % p.ep == 0, {"parallel.ep", "parallel.dp"},
          cat("ep (", p.ep, ") must divide dp (", p.dp, "): the expert-parallel ranks are ",
              "data-parallel ranks sharing out the experts"));
  require(!p.zero1, {"parallel.zero1", "parallel.ep"},
          "ZeRO-1 is not supported with expert parallelism (ep > 1); set one of them off");
  bool routed = false;
  for (int l = 0; l < layer_count(m); ++l) {
    const ModelConfig& b = m.layer(l);
    if (b.mlp != ChannelMixerKind::MoE) continue;
    routed = true;
    require_in(l)(b.moe_experts % p.ep == 0, {"parallel.ep", "model.moe_experts", "model.mlp"},
                  cat("moe_experts (", b.moe_experts, ") must be divisible by ep (", p.ep,
                      "): each expert-parallel rank holds the same number of experts"));
  }
  require(routed, {"parallel.ep", "model.mlp"},
          cat("ep (", p.ep, ") needs a mixture-of-experts layer (model.mlp = \"moe\")"));
}

// The rules between fields, checked on the merged run, first broken rule reported. With a
// per-layer description the block rules hold in every layer, in layer order; their messages
// start with "layer L: " and blame the layer's own origins (`layer_origins`).
void check_consistency(const RunConfig& run, const Origins& origins,
                       const std::vector<Origins>& layer_origins, const Context& ctx) {
  const auto rules = [&ctx](const Origins& blame, std::string prefix) {
    return [&ctx, &blame, prefix = std::move(prefix)](
               bool holds, std::initializer_list<std::string_view> involved,
               const std::string& message) {
      if (!holds) ctx.fail(blamed_pointer(involved, blame), prefix + message);
    };
  };
  const auto require = rules(origins, "");
  const auto require_in = [&](int l) {
    return layer_origins.empty() ? rules(origins, "")
                                 : rules(layer_origins[l], cat("layer ", l, ": "));
  };
  const ModelConfig& m = run.model;
  const TrainingConfig& t = run.training;
  require(m.d_model % m.n_heads == 0, {"model.n_heads", "model.d_model"},
          cat("d_model (", m.d_model, ") must be divisible by n_heads (", m.n_heads, ")"));
  for (int l = 0; l < layer_count(m); ++l) {
    const ModelConfig& b = m.layer(l);
    const auto require_l = require_in(l);
    // RoPE rotates pairs of channels within each head.
    // (MLA rotates its own mla_rope_dim channels instead.)
    const bool rotary = b.positions == Positions::RoPE && b.attention != AttentionKind::MLA &&
                        b.token_mixer == TokenMixerKind::Attention;
    require_l(!rotary || b.head_dim() % 2 == 0,
              {"model.n_heads", "model.d_model", "model.positions", "model.attention"},
              cat("with positions \"rope\" the head dimension d_model / n_heads (", b.d_model,
                  " / ", b.n_heads, " = ", b.head_dim(), ") must be even"));
    require_l(!rotary || (b.rotary_dim() % 2 == 0 && b.rotary_dim() >= 2),
              {"model.rotary_pct", "model.n_heads", "model.d_model", "model.positions",
               "model.attention"},
              cat("with positions \"rope\" the rotary dimension int(head_dim * rotary_pct) (int(",
                  b.head_dim(), " * ", b.rotary_pct, ") = ", b.rotary_dim(),
                  ") must be even and at least 2: RoPE rotates pairs"));
    check_block_rules(b, require_l);
  }
  check_tensor_parallel(m, run.parallel.tp, run.parallel.sequence_parallel, require, require_in);
  check_expert_parallel(m, run.parallel, require, require_in);
  check_finetune(m, run.parallel.tp, require, require_in);
  require(t.min_lr <= t.lr, {"training.min_lr", "training.lr"},
          cat("min_lr (", t.min_lr, ") must be <= lr (", t.lr, ")"));
  // steps = 0 is an evaluation-only run: no schedule; its timed iterations are the eval batches.
  require(t.steps == 0 || t.warmup_steps <= t.steps, {"training.warmup_steps", "training.steps"},
          cat("warmup_steps (", t.warmup_steps, ") must be <= steps (", t.steps, ")"));
  require(t.steps == 0 || t.warmup_iters < t.steps, {"training.warmup_iters", "training.steps"},
          cat("warmup_iters (", t.warmup_iters, ") must be < steps (", t.steps,
              ") so that at least one step is measured"));
  require(t.steps > 0 || t.warmup_iters < t.eval_batches, {"training.warmup_iters", "training.eval_batches"},
          cat("warmup_iters (", t.warmup_iters, ") must be < eval_batches (", t.eval_batches,
              ") in an evaluation-only run (steps = 0) so that at least one batch is measured"));
  require(t.batch_size % run.parallel.dp == 0, {"training.batch_size", "parallel.dp"},
          cat("batch_size (", t.batch_size, ") must be divisible by parallel.dp (", run.parallel.dp,
              ")"));
  require(run.data.format != DataFormat::Tokens || run.data.tokenizer.bytes(),
          {"data.tokenizer", "data.format"},
          "a token file carries its own vocabulary in its header: data.tokenizer applies to "
          "formats \"text\" and \"instructions\" only");
  const MetricsConfig& mc = run.metrics;
  require((mc.p_idle_w == 0 && mc.p_max_w == 0) || (mc.p_idle_w > 0 && mc.p_max_w >= mc.p_idle_w),
          {"metrics.p_max_w", "metrics.p_idle_w"},
          cat("p_idle_w (", mc.p_idle_w, ") and p_max_w (", mc.p_max_w,
              ") must both be 0 (the CPU model's defaults) or satisfy 0 < p_idle_w <= p_max_w"));
}

nlohmann::json resolved_json(const RunConfig& run) {
  nlohmann::json out = {{"name", run.name}};
  for (const FieldSpec& spec : fields())
    if (spec.read) out[spec.section][spec.key] = spec.read(run);
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

// model.from_hf: the Hugging Face config sets the architecture fields (which the job must leave
// unset) and its tensors must fit it; a bad config or tensor is reported in that file's terms.
void import_hf_config(RunConfig& run, Origins& origins, const Context& ctx) {
  const Origin from = origins.at("model.from_hf");
  const fs::path& dir = run.model.from_hf;
  // Every model field but these four describes the architecture.
  std::vector<std::string> architecture;
  for (const std::string& path : keys_of("model", true))
    if (path != "model.seq_len" && path != "model.init_std" && path != "model.from_hf" &&
        path != "model.init_from")
      architecture.push_back(path);
  for (const std::string& path : architecture) {
    const auto it = origins.find(path);
    if (it != origins.end())
      ctx.fail(it->second.pointer, "set by model.from_hf (" + quote((dir / "config.json").string()) +
                                       "); remove it from the job");
  }
  try {
    const hf::Config imported = hf::read_config(dir);
    hf::check_weights(dir, imported);
    if (run.model.seq_len > imported.max_positions)
      ctx.fail(origins.count("model.seq_len") ? origins.at("model.seq_len").pointer : from.pointer,
               cat("seq_len (", run.model.seq_len, ") must be at most the imported model's ",
                   "max_position_embeddings (", imported.max_positions, ")"));
    ModelConfig m = imported.model;
    m.seq_len = run.model.seq_len;
    m.init_std = run.model.init_std;
    m.from_hf = dir;
    m.init_from = run.model.init_from;
    m.finetune = run.model.finetune;
    run.model = m;
  } catch (const hf::Error& e) {
    throw JobError(e.file(), e.where(), e.message());
  }
  for (const std::string& path : architecture) origins[path] = from;
}

// training.export_hf: the model must be one that a supported architecture describes.
void check_hf_export(const RunConfig& run, const Origins& origins, const Context& ctx) {
  try {
    hf::export_arch(run.model);
  } catch (const hf::Error& e) {
    const std::string field = "model." + e.where().substr(std::string("/model/").size());
    ctx.fail(blamed_pointer({field, "training.export_hf"}, origins),
             "cannot export to Hugging Face: " + field + " " + e.message());
  }
}

// finetune.adapter_from, finetune.save_adapter: every adapter has a name in PEFT's layout (its
// module in the Hugging Face architecture the model exports as).
void check_peft_names(const RunConfig& run, const Origins& origins, const Context& ctx) {
  try {
    peft::tensor_names(run.model, make_param_layout(run.model));
  } catch (const hf::Error& e) {
    const std::string field = e.where().empty() ? "finetune.target_modules"
                                                : "model." + e.where().substr(std::string("/model/").size());
    ctx.fail(blamed_pointer({field, "finetune.save_adapter", "finetune.adapter_from"}, origins),
             "cannot name the adapters in PEFT's layout: " + (e.where().empty() ? "" : field + " ") + e.message());
  }
}

RunConfig build_run(const std::string& name, const std::vector<Layer>& layers, const Context& ctx) {
  RunConfig run;
  run.name = name;
  Origins origins;
  LayerDescription given;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    for (const Setting& setting : layers[i]) {
      const FieldSpec& spec = field_at(setting.path);
      spec.assign(run, setting.value, ctx);
      origins[setting.path] = {setting.pointer, i + 1};
      if (!spec.read) given[setting.path] = setting.value;
    }
  }
  if (!run.model.from_hf.empty()) import_hf_config(run, origins, ctx);
  const std::vector<Origins> layer_origins = resolve_layers(run.model, given, origins, ctx);
  check_consistency(run, origins, layer_origins, ctx);
  if (!run.training.export_hf.empty()) check_hf_export(run, origins, ctx);
  const FinetuneConfig& f = run.model.finetune;
  if (f.adapters() && (!f.adapter_from.empty() || !f.save_adapter.empty())) check_peft_names(run, origins, ctx);
  run.as_json = resolved_json(run);
  // The per-layer description as given; omitted when there is none.
  for (const auto& [path, value] : given) {
    const FieldSpec& spec = field_at(path);
    run.as_json[spec.section][spec.key] = nlohmann::json(value);
  }
  return run;
}

}  // namespace ellm::config

namespace ellm {

std::string policy_name(MappingPolicy policy) { return config::name_of(policy); }
std::string method_name(FinetuneMethod method) { return config::name_of(method); }

MappingPolicy parse_policy(const std::string& name, const std::string& source) {
  const std::vector<std::string> choices = config::choices_of<MappingPolicy>();
  if (std::ranges::count(choices, name) == 0) {
    std::vector<std::string> quoted;
    for (const std::string& choice : choices) quoted.push_back(config::quote(choice));
    throw JobError(source, "", "must be one of " + config::join(quoted, ", ") + "; got " + config::quote(name));
  }
  return config::enum_named<MappingPolicy>(name);
}

}  // namespace ellm
