// config.json ↔ ModelConfig for the supported Hugging Face architectures. Every key of the file
// is read, checked against the one value the model here computes exactly (rope_scaling null, no
// sliding window, no dropout, ...), or listed as not affecting the computation (token ids,
// version strings); any other key is refused by name, never ignored.
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "io/hf.hpp"

namespace ellm::hf {
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

Error::Error(std::string file, std::string where, std::string message)
    : std::runtime_error(file + ": " + (where.empty() ? "" : where + ": ") + message),
      file_(std::move(file)), where_(std::move(where)), message_(std::move(message)) {}

const char* arch_name(Arch arch) {
  switch (arch) {
    case Arch::Qwen2: return "Qwen2ForCausalLM";
    case Arch::GPTNeoX: return "GPTNeoXForCausalLM";
    case Arch::Llama: break;
  }
  return "LlamaForCausalLM";
}

namespace {

// Keys that describe nothing the forward or backward computes: token ids, versions, caching,
// the initialisation of a new model, and NeoX's classification head.
const std::set<std::string> kDescriptive = {
    "_name_or_path", "transformers_version", "torch_dtype", "dtype", "use_cache",
    "initializer_range", "bos_token_id", "eos_token_id", "pad_token_id", "model_type",
    "architectures", "tokenizer_class", "classifier_dropout"};

// The keys of one config.json, read once each; finish() refuses the rest by name.
class Keys {
 public:
  Keys(const Json& j, std::string file) : j_(j), file_(std::move(file)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& message) const {
    throw Error(file_, "/" + key, message);
  }
  const Json* get(const std::string& key) {
    seen_.insert(key);
    const auto it = j_.find(key);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }
  // A positive integer; required when `fallback` is 0.
  int count(const std::string& key, int fallback = 0) {
    const Json* v = get(key);
    if (v == nullptr) {
      if (fallback == 0) fail(key, "missing: a positive integer is required");
      return fallback;
    }
    if (!v->is_number_integer() || v->get<std::int64_t>() < 1 || v->get<std::int64_t>() > (1 << 30))
      fail(key, "must be a positive integer, got " + v->dump());
    return v->get<int>();
  }
  double positive(const std::string& key, double fallback) {
    const Json* v = get(key);
    if (v == nullptr) return fallback;
    if (!v->is_number() || v->get<double>() <= 0) fail(key, "must be a number > 0, got " + v->dump());
    return v->get<double>();
  }
  bool flag(const std::string& key, bool fallback) {
    const Json* v = get(key);
    if (v == nullptr) return fallback;
    if (!v->is_boolean()) fail(key, "must be true or false, got " + v->dump());
    return v->get<bool>();
  }
  std::string text(const std::string& key, const std::string& fallback) {
    const Json* v = get(key);
    if (v == nullptr) return fallback;
    if (!v->is_string()) fail(key, "must be a string, got " + v->dump());
    return v->get<std::string>();
  }
  // The key is absent, null, or exactly `allowed`: anything else changes the computation.
  void only(const std::string& key, const Json& allowed, const std::string& why) {
    const Json* v = get(key);
    if (v != nullptr && *v != allowed) fail(key, "unsupported value " + v->dump() + ": " + why);
  }
  void finish() const {
    for (const auto& [key, value] : j_.items()) {
      if (seen_.count(key) == 0 && kDescriptive.count(key) == 0)
        fail(key, "unknown key: not supported by the import (docs/HF_IMPORT.md lists the keys it reads)");
    }
  }

 private:
  const Json& j_;
  std::string file_;
  std::set<std::string> seen_;
};

Json read_json(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw Error(file.string(), "", "cannot read (a Hugging Face model directory holds config.json)");
  try {
    return Json::parse(in);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for 1e999999
    throw Error(file.string(), "", std::string("not valid JSON: ") + e.what());
  }
}

Arch arch_of(const Json& j, const std::string& file) {
  const auto it = j.find("architectures");
  if (it == j.end() || !it->is_array() || it->size() != 1 || !(*it)[0].is_string())
    throw Error(file, "/architectures", "must be an array of one architecture name");
  const std::string name = (*it)[0].get<std::string>();
  for (Arch a : {Arch::Llama, Arch::Qwen2, Arch::GPTNeoX})
    if (name == arch_name(a)) return a;
  throw Error(file, "/architectures/0",
              "unknown architecture \"" + name +
                  "\"; supported: LlamaForCausalLM, Qwen2ForCausalLM, GPTNeoXForCausalLM");
}

// The fields every architecture has, and the rules between them.
void read_shape(Keys& k, ModelConfig& m, int default_kv) {
  m.vocab_size = k.count("vocab_size");
  m.d_model = k.count("hidden_size");
  m.d_ff = k.count("intermediate_size");
  m.n_heads = k.count("num_attention_heads");
  m.n_layers = k.count("num_hidden_layers");
  if (m.d_model % m.n_heads != 0)
    k.fail("num_attention_heads", "hidden_size (" + std::to_string(m.d_model) +
                                      ") must be divisible by num_attention_heads (" +
                                      std::to_string(m.n_heads) + ")");
  if (default_kv != 0) {
    m.n_kv_heads = k.count("num_key_value_heads", default_kv);
    if (m.n_heads % m.n_kv_heads != 0)
      k.fail("num_key_value_heads", "must divide num_attention_heads (" + std::to_string(m.n_heads) + ")");
  }
  const Json* head_dim = k.get("head_dim");
  if (head_dim != nullptr && *head_dim != m.head_dim())
    k.fail("head_dim", "unsupported value " + head_dim->dump() +
                           ": the head size must be hidden_size / num_attention_heads (" +
                           std::to_string(m.head_dim()) + ")");
  m.tie_embeddings = k.flag("tie_word_embeddings", false);
  k.only("rope_scaling", Json(), "rope scaling (linear, dynamic, yarn, llama3, ...) is not supported");
  k.only("attention_dropout", 0.0, "dropout is not supported");
  m.positions = Positions::RoPE;
  m.attention = AttentionKind::GQA;
  m.mlp = ChannelMixerKind::Dense;
}

void read_llama_family(Keys& k, ModelConfig& m, Arch arch) {
  read_shape(k, m, k.count("num_attention_heads"));
  m.norm = Norm::RMSNorm;
  m.norm_eps = k.positive("rms_norm_eps", 1e-6);
  m.rope_base = k.positive("rope_theta", 10000.0);
  m.activation = Activation::SwiGLU;
  m.wiring = Wiring::Sequential;
  k.only("hidden_act", "silu", "the MLP is SwiGLU (silu) only");
  if (arch == Arch::Llama) {
    m.bias = Bias::None;
    k.only("attention_bias", false, "Llama with attention biases (q, k, v and o) is not supported");
    k.only("mlp_bias", false, "MLP biases are not supported");
    k.only("pretraining_tp", 1, "only 1 is supported");
  } else {
    m.bias = Bias::QKV;
    if (k.flag("use_sliding_window", false))
      k.fail("use_sliding_window", "sliding-window attention (Qwen2's per-layer windows) is not supported");
    k.get("sliding_window");     // unused without use_sliding_window
    k.get("max_window_layers");  // likewise
  }
}

void read_neox(Keys& k, ModelConfig& m) {
  read_shape(k, m, 0);
  m.norm = Norm::LayerNorm;
  m.norm_eps = k.positive("layer_norm_eps", 1e-5);
  const Json* factor = k.get("partial_rotary_factor");
  m.rotary_pct = k.positive("rotary_pct", factor != nullptr && factor->is_number() ? factor->get<double>() : 0.25);
  if (m.rotary_pct > 1) k.fail("rotary_pct", "must be in (0, 1]");
  const Json* theta = k.get("rope_theta");
  m.rope_base = k.positive("rotary_emb_base", theta != nullptr && theta->is_number() ? theta->get<double>() : 10000.0);
  m.wiring = k.flag("use_parallel_residual", true) ? Wiring::Parallel : Wiring::Sequential;
  const std::string act = k.text("hidden_act", "gelu");
  if (act == "gelu") {
    m.activation = Activation::GELUExact;
  } else if (act == "gelu_new" || act == "gelu_pytorch_tanh") {
    m.activation = Activation::GELU;
  } else {
    k.fail("hidden_act", "unsupported value \"" + act + "\": supported are \"gelu\" (erf), \"gelu_new\" and \"gelu_pytorch_tanh\" (tanh)");
  }
  m.bias = Bias::All;
  k.only("attention_bias", true, "GPT-NeoX without attention biases is not supported");
  k.only("hidden_dropout", 0.0, "dropout is not supported");
}

}  // namespace

Config read_config(const fs::path& dir) {
  if (!fs::is_directory(dir))
    throw Error(dir.string(), "", "is not a directory (model.from_hf names a Hugging Face model directory)");
  const fs::path path = dir / "config.json";
  const std::string file = path.string();
  const Json j = read_json(path);
  if (!j.is_object()) throw Error(file, "", "must be a JSON object");
  Config c;
  c.arch = arch_of(j, file);
  Keys k(j, file);
  if (c.arch == Arch::GPTNeoX) {
    read_neox(k, c.model);
  } else {
    read_llama_family(k, c.model, c.arch);
  }
  c.max_positions = k.count("max_position_embeddings", 2048);
  for (const char* key : {"torch_dtype", "dtype"}) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_string() || (*it != "float32" && *it != "bfloat16" && *it != "float16"))
      throw Error(file, std::string("/") + key, "must be \"float32\", \"bfloat16\" or \"float16\", got " + it->dump());
    c.torch_dtype = it->get<std::string>();
  }
  k.finish();
  return c;
}

Arch export_arch(const ModelConfig& m) {
  const auto refuse = [](const std::string& field, const std::string& why) {
    throw Error("", "/model/" + field, why + " (export_hf writes Llama, Qwen2 or GPT-NeoX)");
  };
  if (!m.layers.empty()) refuse("layer_pattern", "must be unset: every layer the same");
  if (m.attention != AttentionKind::GQA) refuse("attention", "must be \"gqa\"");
  if (m.mlp != ChannelMixerKind::Dense) refuse("mlp", "must be \"dense\"");
  if (m.positions != Positions::RoPE) refuse("positions", "must be \"rope\"");
  if (m.window != 0) refuse("window", "must be 0");
  if (m.norm == Norm::LayerNorm) {  // GPT-NeoX
    if (m.bias != Bias::All) refuse("bias", "must be \"all\" with layernorm (GPT-NeoX)");
    if (m.activation == Activation::SwiGLU) refuse("activation", "must be \"gelu_exact\" or \"gelu\" with layernorm (GPT-NeoX)");
    if (m.kv_heads() != m.n_heads) refuse("n_kv_heads", "must be 0 or n_heads with layernorm (GPT-NeoX has no grouped kv heads)");
    return Arch::GPTNeoX;
  }
  if (m.bias == Bias::All) refuse("bias", "must be \"none\" (Llama) or \"qkv\" (Qwen2) with rmsnorm");
  if (m.activation != Activation::SwiGLU) refuse("activation", "must be \"swiglu\" with rmsnorm (Llama, Qwen2)");
  if (m.wiring != Wiring::Sequential) refuse("wiring", "must be \"sequential\" with rmsnorm (Llama, Qwen2)");
  if (m.rotary_pct != 1.0) refuse("rotary_pct", "must be 1 with rmsnorm (Llama and Qwen2 rotate whole heads)");
  return m.bias == Bias::None ? Arch::Llama : Arch::Qwen2;
}

// The config.json that read_config turns back into `m` (and what Hugging Face reads).
nlohmann::ordered_json config_json(const ModelConfig& m, Arch arch, int max_positions) {
  Json j = {{"architectures", {arch_name(arch)}},
            {"model_type", arch == Arch::Llama ? "llama" : arch == Arch::Qwen2 ? "qwen2" : "gpt_neox"},
            {"vocab_size", m.vocab_size},
            {"hidden_size", m.d_model},
            {"intermediate_size", m.d_ff},
            {"num_attention_heads", m.n_heads},
            {"num_hidden_layers", m.n_layers},
            {"max_position_embeddings", max_positions},
            {"tie_word_embeddings", m.tie_embeddings},
            {"rope_scaling", nullptr},
            {"attention_dropout", 0.0},
            {"torch_dtype", "float32"}};
  if (arch == Arch::GPTNeoX) {
    j["layer_norm_eps"] = m.norm_eps;
    j["rotary_pct"] = m.rotary_pct;
    j["rotary_emb_base"] = m.rope_base;
    j["use_parallel_residual"] = m.wiring == Wiring::Parallel;
    j["hidden_act"] = m.activation == Activation::GELUExact ? "gelu" : "gelu_new";
    j["attention_bias"] = true;
    j["hidden_dropout"] = 0.0;
  } else {
    j["num_key_value_heads"] = m.kv_heads();
    j["rms_norm_eps"] = m.norm_eps;
    j["rope_theta"] = m.rope_base;
    j["hidden_act"] = "silu";
    if (arch == Arch::Llama) {
      j["attention_bias"] = false;
      j["mlp_bias"] = false;
    } else {
      j["use_sliding_window"] = false;
    }
  }
  return j;
}

}  // namespace ellm::hf
