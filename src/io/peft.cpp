#include "io/peft.hpp"

#include <algorithm>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "io/hf.hpp"
#include "io/safetensors.hpp"
#include "model/plan.hpp"

namespace ellm::peft {
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;
using Factor = TensorDecl::AdapterSite::Factor;

namespace {

const char* suffix_of(Factor f) {
  return f == Factor::A ? ".lora_A.weight" : f == Factor::B ? ".lora_B.weight" : ".lora_magnitude_vector";
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); i++) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string list_text(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

// PEFT's init_lora_weights for the method: PiSSA's records its SVD (the residual base the
// adapter is relative to); the others start as PEFT's default (true).
Json init_weights(const FinetuneConfig& f) {
  if (f.method != FinetuneMethod::PiSSA) return true;
  return f.pissa_svd_iters == 0 ? std::string("pissa") : "pissa_niter_" + std::to_string(f.pissa_svd_iters);
}

// The adapted modules' own names ("q_proj"), each once, in the order the model declares them.
std::vector<std::string> target_modules(const std::map<std::string, std::string>& names,
                                        const ArenaLayout& params) {
  std::vector<std::string> out;
  for (const TensorInfo& t : params.tensors()) {
    if (!t.adapter) continue;
    const std::string& full = names.at(t.name);
    const std::string module = full.substr(0, full.size() - std::string(suffix_of(t.site.factor)).size());
    const std::string own = module.substr(module.rfind('.') + 1);
    if (std::ranges::count(out, own) == 0) out.push_back(own);
  }
  return out;
}

Json config_json(const ModelConfig& m, const std::vector<std::string>& targets, const std::string& base_model) {
  const FinetuneConfig& f = m.finetune;
  return {{"peft_type", "LORA"},
          {"task_type", "CAUSAL_LM"},
          {"base_model_name_or_path", base_model.empty() ? Json(nullptr) : Json(base_model)},
          {"r", f.rank},
          {"lora_alpha", f.alpha},
          {"lora_dropout", f.dropout},
          {"target_modules", targets},
          {"use_rslora", f.method == FinetuneMethod::RSLoRA},
          {"use_dora", f.method == FinetuneMethod::DoRA},
          {"init_lora_weights", init_weights(f)},
          {"fan_in_fan_out", false},
          {"bias", "none"},
          {"modules_to_save", nullptr},
          {"rank_pattern", Json::object()},
          {"alpha_pattern", Json::object()},
          {"inference_mode", true}};
}

// adapter_config.json against the job's finetune section (docs/PEFT.md: the job describes the
// adapter it loads).
void check_config(const fs::path& file, const ModelConfig& m, const std::vector<std::string>& targets) {
  const FinetuneConfig& f = m.finetune;
  const auto fail = [&](const std::string& pointer, const std::string& message) {
    throw st::FileError(file.string(), "", pointer + ": " + message);
  };
  std::ifstream in(file);
  if (!in) throw st::FileError(file.string(), "", "cannot be read (an adapter directory holds adapter_config.json)");
  Json j;
  try {
    j = Json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw st::FileError(file.string(), "", std::string("is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) fail("", "must be a JSON object, got " + j.dump());
  const auto value = [&](const char* key, const Json& absent) { return j.contains(key) ? j[key] : absent; };
  if (value("peft_type", "") != "LORA")
    fail("/peft_type", "must be \"LORA\" (the LoRA family: lora, lora_plus, rslora, dora, pissa), got " +
                           value("peft_type", nullptr).dump());
  const std::string job = "the job's finetune.";
  const Json r = value("r", nullptr);
  if (!r.is_number_integer() || r.get<long long>() != f.rank)
    fail("/r", r.dump() + ", and " + job + "rank is " + std::to_string(f.rank) + ": they must agree");
  const Json alpha = value("lora_alpha", nullptr);
  if (!alpha.is_number() || alpha.get<double>() != f.alpha)
    fail("/lora_alpha", alpha.dump() + ", and " + job + "alpha is " + Json(f.alpha).dump() + ": they must agree");
  const std::string method = "\"" + method_name(f.method) + "\"";
  for (const auto& [key, wanted, which] : {std::tuple{"use_dora", f.method == FinetuneMethod::DoRA, "dora"},
                                           std::tuple{"use_rslora", f.method == FinetuneMethod::RSLoRA, "rslora"}}) {
    const Json v = value(key, false);
    if (!v.is_boolean() || v.get<bool>() != wanted)
      fail(std::string("/") + key, v.dump() + ", and " + job + "method is " + method + " (" + key +
                                       " true is method \"" + which + "\")");
  }
  const Json init = value("init_lora_weights", true);
  if (f.method == FinetuneMethod::PiSSA ? init != init_weights(f)
                                        : init.is_string() && init.get<std::string>().starts_with("pissa"))
    fail("/init_lora_weights", init.dump() + ", and " + job + "method is " + method +
                                   (f.method == FinetuneMethod::PiSSA
                                        ? " with pissa_svd_iters = " + std::to_string(f.pissa_svd_iters) +
                                              ", whose SVD is " + init_weights(f).dump()
                                        : std::string(" (a PiSSA adapter is method \"pissa\")")));
  if (value("fan_in_fan_out", false) != false)
    fail("/fan_in_fan_out", "must be false (weights stored (out, in), as PEFT does for Linear layers)");
  if (value("bias", "none") != "none") fail("/bias", "must be \"none\": the base's biases are not adapted");
  for (const char* key : {"rank_pattern", "alpha_pattern"})
    if (!value(key, Json::object()).empty())
      fail(std::string("/") + key, "must be empty: every module has the same r and lora_alpha here");
  const Json modules = value("target_modules", nullptr);
  if (!modules.is_array())
    fail("/target_modules", "must be an array of module names (a regular expression is not supported), got " +
                                modules.dump());
  const hf::Arch arch = hf::export_arch(m);
  const std::vector<std::string> known = hf::linear_module_names(arch);
  std::set<std::string> given;
  for (std::size_t i = 0; i < modules.size(); i++) {
    const Json& name = modules[i];
    if (!name.is_string() || std::ranges::count(known, name.get<std::string>()) == 0)
      fail("/target_modules/" + std::to_string(i),
           name.dump() + " is not a linear module of the base (" + hf::arch_name(arch) + ": " + list_text(known) + ")");
    given.insert(name.get<std::string>());
  }
  if (given != std::set<std::string>(targets.begin(), targets.end()))
    fail("/target_modules", modules.dump() + ", and " + job + "target_modules adapts " + list_text(targets) +
                                " of this base: they must agree");
}

// The file's tensors against the model's adapter tensors: each present with its full shape,
// nothing else.
void check_tensors(const fs::path& file, const ModelConfig& m, const ArenaLayout& params,
                   const std::map<std::string, std::string>& names, const std::vector<std::string>& targets) {
  const FinetuneConfig& f = m.finetune;
  const st::Reader reader = st::Reader::open(file);
  std::set<std::string> expected;
  for (const TensorInfo& t : params.tensors()) {
    if (!t.adapter) continue;
    const std::string& name = names.at(t.name);
    expected.insert(name);
    const std::vector<std::int64_t> want(t.full_shape.begin(), t.full_shape.end());
    const st::TensorView* v = reader.find(name);
    if (!v)
      throw st::FileError(file.string(), name, "missing; the job's model (finetune.method \"" + method_name(f.method) +
                                                   "\", r = " + std::to_string(f.rank) + ") adapts this module: shape " +
                                                   shape_text(want));
    if (v->shape == want) continue;
    const int rank_dim = t.site.factor == Factor::A ? 0 : 1;  // A (r, in), B (out, r)
    const bool only_rank = t.site.factor != Factor::Magnitude && v->shape.size() == 2 &&
                           v->shape[1 - rank_dim] == want[1 - rank_dim];
    throw st::FileError(file.string(), name,
                        only_rank ? "has rank " + std::to_string(v->shape[rank_dim]) + " (shape " + shape_text(v->shape) +
                                        "); adapter_config.json and the job's finetune.rank have r = " +
                                        std::to_string(f.rank) + ", which needs " + shape_text(want)
                                  : "has shape " + shape_text(v->shape) + "; the job's base model needs " + shape_text(want));
  }
  for (const std::string& name : reader.names()) {
    if (expected.count(name)) continue;
    if (name.ends_with(suffix_of(Factor::Magnitude)))
      throw st::FileError(file.string(), name, "unexpected: a DoRA magnitude, and the job's finetune.method is \"" +
                                                   method_name(f.method) + "\"");
    throw st::FileError(file.string(), name,
                        "unexpected: not an adapter tensor of the job's model (" + std::to_string(m.n_layers) +
                            " layers, adapting " + list_text(targets) + " in each)");
  }
}

}  // namespace

std::map<std::string, std::string> tensor_names(const ModelConfig& m, const ArenaLayout& params) {
  std::vector<hf::RowRange> ranges;
  std::vector<const TensorInfo*> adapters;
  for (const TensorInfo& t : params.tensors()) {
    if (!t.adapter) continue;
    ranges.push_back({t.site.base, t.site.row0, t.site.rows});
    adapters.push_back(&t);
  }
  const std::vector<std::string> modules = hf::modules_of(m, ranges);
  std::map<std::string, std::string> names;
  for (std::size_t i = 0; i < adapters.size(); i++)
    names[adapters[i]->name] = "base_model.model." + modules[i] + suffix_of(adapters[i]->site.factor);
  return names;
}

void write_adapter(const fs::path& dir, const ModelConfig& m, const ArenaLayout& params,
                   const std::map<std::string, std::vector<float>>& full, const std::string& base_model) {
  const std::map<std::string, std::string> names = tensor_names(m, params);
  std::vector<st::TensorOut> out;
  for (const TensorInfo& t : params.tensors()) {
    if (!t.adapter) continue;
    out.push_back({names.at(t.name), st::DType::F32, {t.full_shape.begin(), t.full_shape.end()},
                   full.at(t.name).data()});
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw st::FileError(dir.string(), "", "cannot create the directory: " + ec.message());
  st::write(dir / kWeightsFile, out, {{"format", "pt"}});  // PEFT's loader reads format "pt"
  const fs::path config = dir / kConfigFile, tmp = dir / (std::string(kConfigFile) + ".tmp");
  {
    std::ofstream f(tmp);
    f << config_json(m, target_modules(names, params), base_model).dump(2) << "\n";
    if (!f.flush()) throw st::FileError(tmp.string(), "", "cannot write");
  }
  fs::rename(tmp, config, ec);
  if (ec) throw st::FileError(config.string(), "", "cannot write: " + ec.message());
}

void check_adapter(const fs::path& dir, const ModelConfig& m) {
  const ArenaLayout params = make_param_layout(m);
  const std::map<std::string, std::string> names = tensor_names(m, params);
  const std::vector<std::string> targets = target_modules(names, params);
  check_config(dir / kConfigFile, m, targets);
  check_tensors(dir / kWeightsFile, m, params, names, targets);
}

template <class T>
void load_adapter(const fs::path& dir, const ModelConfig& m, const ArenaLayout& params, T* arena) {
  const st::Reader reader = st::Reader::open(dir / kWeightsFile);
  const std::map<std::string, std::string> names = tensor_names(m, params);
  std::vector<T> full;
  for (const TensorInfo& t : params.tensors()) {
    if (!t.adapter) continue;
    full.resize(t.full_numel);
    st::read_as(reader.at(names.at(t.name)), full.data());
    extract_shard(full.data(), t, arena + t.offset);
  }
}
template void load_adapter<float>(const fs::path&, const ModelConfig&, const ArenaLayout&, float*);
template void load_adapter<double>(const fs::path&, const ModelConfig&, const ArenaLayout&, double*);

}  // namespace ellm::peft
