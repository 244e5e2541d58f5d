// Adapters saved alone in Hugging Face PEFT's layout and loaded back (docs/PEFT.md, io/peft.hpp):
// PEFT's tensor names and config fields; loading reproduces the saved model's probabilities bit
// for bit; an adapter that does not match its base fails with one message naming the file, the
// tensor or JSON pointer, and what was expected.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "efficientllm/config.hpp"
#include "io/peft.hpp"
#include "io/safetensors.hpp"
#include "model/gpt.hpp"
#include "util/rng.hpp"

namespace ellm {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

// A Llama-style model (it exports as LlamaForCausalLM): C = 8, 2 heads, 1 kv head, d_ff 12.
ModelConfig llama(FinetuneMethod method, std::vector<std::string> targets = {"all"}, int rank = 2) {
  ModelConfig m;
  m.vocab_size = 11;
  m.n_layers = 2;
  m.d_model = 8;
  m.n_heads = 2;
  m.n_kv_heads = 1;
  m.d_ff = 12;
  m.seq_len = 5;
  m.norm = Norm::RMSNorm;
  m.activation = Activation::SwiGLU;
  m.positions = Positions::RoPE;
  m.bias = Bias::None;
  m.finetune.method = method;
  m.finetune.rank = rank;
  m.finetune.alpha = 3;
  m.finetune.target_modules = std::move(targets);
  return m;
}

const std::vector<int> kTokens = {1, 4, 2, 9, 0, 3, 3, 7, 10, 5};

std::vector<float> probabilities(GPT<float>& model) {
  const std::vector<int> targets(kTokens.size(), 0);
  model.forward(kTokens.data(), targets.data(), 2);
  return {model.probabilities(), model.probabilities() + kTokens.size() * model.config().vocab_size};
}

// A model as a fine-tuning run leaves it: base from seed 11, adapters started from it and moved.
void trained(GPT<float>& model) {
  model.init_params(11);
  model.init_adapters();
  Rng rng(4);
  for (const TensorInfo& t : model.param_layout().tensors())
    if (t.adapter) for (std::size_t i = 0; i < t.numel; i++) model.params()[t.offset + i] += 0.2f * float(rng.normal());
}

// The adapter tensors of `model` by our names (tp = 1: local is full).
std::map<std::string, std::vector<float>> adapter_tensors(const GPT<float>& model) {
  std::map<std::string, std::vector<float>> full;
  for (const TensorInfo& t : model.param_layout().tensors())
    if (t.adapter) full[t.name].assign(model.params() + t.offset, model.params() + t.offset + t.numel);
  return full;
}

struct AdapterDir {
  fs::path dir = fs::temp_directory_path() / ("ellm_peft_" + std::to_string(::getpid()) + "_" + test_name());
  static std::string test_name() {  // parameterised tests' names hold a '/'
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(name.begin(), name.end(), '/', '_');
    return name;
  }
  ~AdapterDir() { fs::remove_all(dir); }
  fs::path config() const { return dir / peft::kConfigFile; }
  fs::path weights() const { return dir / peft::kWeightsFile; }
};

// Saves `cfg`'s trained model into dir; returns its probabilities.
std::vector<float> save(const ModelConfig& cfg, const fs::path& dir) {
  GPT<float> model(cfg, 2);
  trained(model);
  peft::write_adapter(dir, cfg, model.param_layout(), adapter_tensors(model), "results/base");
  return probabilities(model);
}

class PeftAdapterRoundTrip : public ::testing::TestWithParam<FinetuneMethod> {};

TEST_P(PeftAdapterRoundTrip, LoadingReproducesTheSavedModelExactly) {
  const ModelConfig cfg = llama(GetParam());
  AdapterDir d;
  const std::vector<float> want = save(cfg, d.dir);
  peft::check_adapter(d.dir, cfg);
  GPT<float> loaded(cfg, 2);
  loaded.init_params(11);  // the same base
  loaded.init_adapters();  // PiSSA: the same SVD, the same residual base
  const std::vector<float> fresh = probabilities(loaded);
  peft::load_adapter(d.dir, cfg, loaded.param_layout(), loaded.params());
  const std::vector<float> got = probabilities(loaded);
  EXPECT_EQ(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)), 0);
  EXPECT_NE(std::memcmp(want.data(), fresh.data(), want.size() * sizeof(float)), 0);  // the load did it
}

std::string case_name(const ::testing::TestParamInfo<FinetuneMethod>& info) { return method_name(info.param); }

INSTANTIATE_TEST_SUITE_P(Methods, PeftAdapterRoundTrip,
                         ::testing::Values(FinetuneMethod::LoRA, FinetuneMethod::RSLoRA, FinetuneMethod::DoRA,
                                           FinetuneMethod::PiSSA),
                         case_name);

// PEFT's key names (base_model.model.<Hugging Face module>.lora_A.weight, …) and config fields.
TEST(PeftAdapterLayout, NamesShapesAndConfigAreHuggingFacePefts) {
  const ModelConfig cfg = llama(FinetuneMethod::DoRA, {"v", "o", "up"}, 2);
  AdapterDir d;
  save(cfg, d.dir);
  const st::Reader r = st::Reader::open(d.weights());
  const std::string p = "base_model.model.model.layers.1.";
  const std::map<std::string, std::vector<std::int64_t>> want = {
      {p + "self_attn.v_proj.lora_A.weight", {2, 8}},  {p + "self_attn.v_proj.lora_B.weight", {4, 2}},
      {p + "self_attn.v_proj.lora_magnitude_vector", {4}}, {p + "self_attn.o_proj.lora_A.weight", {2, 8}},
      {p + "self_attn.o_proj.lora_B.weight", {8, 2}},  {p + "self_attn.o_proj.lora_magnitude_vector", {8}},
      {p + "mlp.up_proj.lora_A.weight", {2, 8}},       {p + "mlp.up_proj.lora_B.weight", {12, 2}},
      {p + "mlp.up_proj.lora_magnitude_vector", {12}}};
  for (const auto& [name, shape] : want) {
    const st::TensorView* t = r.find(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->shape, shape) << name;
    EXPECT_EQ(t->dtype, st::DType::F32) << name;
  }
  EXPECT_EQ(r.names().size(), 2 * want.size());  // and layer 0's
  EXPECT_EQ(r.metadata().at("format"), "pt");
  const json c = json::parse(std::ifstream(d.config()));
  EXPECT_EQ(c["peft_type"], "LORA");
  EXPECT_EQ(c["r"], 2);
  EXPECT_EQ(c["lora_alpha"], 3.0);
  EXPECT_EQ(c["target_modules"], json({"v_proj", "o_proj", "up_proj"}));
  EXPECT_EQ(c["use_dora"], true);
  EXPECT_EQ(c["use_rslora"], false);
  EXPECT_EQ(c["fan_in_fan_out"], false);
  EXPECT_EQ(c["bias"], "none");
  EXPECT_EQ(c["init_lora_weights"], true);
  EXPECT_EQ(c["base_model_name_or_path"], "results/base");
}

TEST(PeftAdapterLayout, PissaRecordsItsSvd) {
  ModelConfig cfg = llama(FinetuneMethod::PiSSA, {"q"});
  cfg.finetune.pissa_svd_iters = 3;
  AdapterDir d;
  save(cfg, d.dir);
  EXPECT_EQ(json::parse(std::ifstream(d.config()))["init_lora_weights"], "pissa_niter_3");
}

// ---- an adapter that does not match its base ----

// The error check_adapter throws for `cfg` after `edit` changed the saved files (a LoRA adapter of
// rank 2 on every linear of the Llama-style model, unless `saved` says otherwise).
using Tensors = std::map<std::string, std::pair<std::vector<std::int64_t>, std::vector<float>>>;
std::string mismatch(const ModelConfig& cfg, const std::function<void(Tensors&, json&)>& edit,
                     const ModelConfig& saved = llama(FinetuneMethod::LoRA)) {
  AdapterDir d;
  save(saved, d.dir);
  Tensors tensors;
  {
    const st::Reader r = st::Reader::open(d.weights());
    for (const std::string& name : r.names()) {
      std::vector<float> data(r.at(name).numel());
      st::read_as(r.at(name), data.data());
      tensors[name] = {r.at(name).shape, data};
    }
  }
  json config = json::parse(std::ifstream(d.config()));
  edit(tensors, config);
  std::vector<st::TensorOut> out;
  for (const auto& [name, t] : tensors) out.push_back({name, st::DType::F32, t.first, t.second.data()});
  st::write(d.weights(), out, {{"format", "pt"}});
  std::ofstream(d.config()) << config.dump(2);
  try {
    peft::check_adapter(d.dir, cfg);
  } catch (const st::FileError& e) {
    const std::string what = e.what();
    const std::string dir = d.dir.string() + "/";
    return what.starts_with(dir) ? what.substr(dir.size()) : what;  // the file's name, not the temporary path
  }
  return "no error";
}

const std::string kLayer1 = "base_model.model.model.layers.1.";

TEST(PeftAdapterMismatch, UnchangedIsAccepted) {
  EXPECT_EQ(mismatch(llama(FinetuneMethod::LoRA), [](Tensors&, json&) {}), "no error");
}

TEST(PeftAdapterMismatch, MissingTensor) {
  EXPECT_EQ(mismatch(llama(FinetuneMethod::LoRA),
                     [](Tensors& t, json&) { t.erase(kLayer1 + "mlp.down_proj.lora_B.weight"); }),
            "adapter_model.safetensors: tensor '" + kLayer1 +
                "mlp.down_proj.lora_B.weight': missing; the job's model (finetune.method \"lora\", r = 2) "
                "adapts this module: shape [8, 2]");
}

TEST(PeftAdapterMismatch, ExtraTensorOfALayerTheBaseLacks) {
  EXPECT_EQ(mismatch(llama(FinetuneMethod::LoRA),
                     [](Tensors& t, json&) {
                       t["base_model.model.model.layers.5.self_attn.q_proj.lora_A.weight"] = {{2, 8}, std::vector<float>(16, 1)};
                     }),
            "adapter_model.safetensors: tensor 'base_model.model.model.layers.5.self_attn.q_proj.lora_A.weight': "
            "unexpected: not an adapter tensor of the job's model (2 layers, adapting q_proj, k_proj, v_proj, "
            "o_proj, gate_proj, up_proj, down_proj in each)");
}

TEST(PeftAdapterMismatch, WrongShape) {
  EXPECT_EQ(mismatch(llama(FinetuneMethod::LoRA),
                     [](Tensors& t, json&) {
                       t[kLayer1 + "self_attn.q_proj.lora_A.weight"] = {{2, 9}, std::vector<float>(18, 1)};
                     }),
            "adapter_model.safetensors: tensor '" + kLayer1 +
                "self_attn.q_proj.lora_A.weight': has shape [2, 9]; the job's base model needs [2, 8]");
}

TEST(PeftAdapterMismatch, TensorsOfAnotherRankThanTheConfig) {
  EXPECT_EQ(mismatch(llama(FinetuneMethod::LoRA), [](Tensors&, json& c) { c["r"] = 2; },
                     llama(FinetuneMethod::LoRA, {"all"}, 3)),
            "adapter_model.safetensors: tensor 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': "
            "has rank 3 (shape [3, 8]); adapter_config.json and the job's finetune.rank have r = 2, which "
            "needs [2, 8]");
}

TEST(PeftAdapterMismatch, ConfigRankOtherThanTheJobs) {
  EXPECT_EQ(mismatch(llama(FinetuneMethod::LoRA, {"all"}, 4), [](Tensors&, json&) {}),
            "adapter_config.json: /r: 2, and the job's finetune.rank is 4: they must agree");
}

TEST(PeftAdapterMismatch, TargetModuleTheBaseLacks) {
  EXPECT_EQ(mismatch(llama(FinetuneMethod::LoRA), [](Tensors&, json& c) { c["target_modules"].push_back("fc1"); }),
            "adapter_config.json: /target_modules/7: \"fc1\" is not a linear module of the base "
            "(LlamaForCausalLM: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)");
}

TEST(PeftAdapterMismatch, TargetModulesOtherThanTheJobs) {
  EXPECT_EQ(mismatch(llama(FinetuneMethod::LoRA, {"q", "v"}), [](Tensors&, json&) {}),
            "adapter_config.json: /target_modules: [\"q_proj\",\"k_proj\",\"v_proj\",\"o_proj\",\"gate_proj\","
            "\"up_proj\",\"down_proj\"], and the job's finetune.target_modules adapts q_proj, v_proj of this "
            "base: they must agree");
}

TEST(PeftAdapterMismatch, ConfigSaysDoraTheTensorsAndJobDoNot) {
  EXPECT_EQ(mismatch(llama(FinetuneMethod::LoRA), [](Tensors&, json& c) { c["use_dora"] = true; }),
            "adapter_config.json: /use_dora: true, and the job's finetune.method is \"lora\" (use_dora true "
            "is method \"dora\")");
}

TEST(PeftAdapterMismatch, DoraMagnitudeInALoraAdapter) {
  EXPECT_EQ(mismatch(llama(FinetuneMethod::LoRA),
                     [](Tensors& t, json&) {
                       t[kLayer1 + "mlp.up_proj.lora_magnitude_vector"] = {{12}, std::vector<float>(12, 1)};
                     }),
            "adapter_model.safetensors: tensor '" + kLayer1 +
                "mlp.up_proj.lora_magnitude_vector': unexpected: a DoRA magnitude, and the job's "
                "finetune.method is \"lora\"");
}

TEST(PeftAdapterMismatch, PissaOfAnotherSvd) {
  ModelConfig job = llama(FinetuneMethod::PiSSA);
  job.finetune.pissa_svd_iters = 2;
  EXPECT_EQ(mismatch(job, [](Tensors&, json&) {}, llama(FinetuneMethod::PiSSA)),
            "adapter_config.json: /init_lora_weights: \"pissa\", and the job's finetune.method is \"pissa\" "
            "with pissa_svd_iters = 2, whose SVD is \"pissa_niter_2\"");
}

TEST(PeftAdapterMismatch, NoConfigFile) {
  AdapterDir d;
  fs::create_directories(d.dir);
  try {
    peft::check_adapter(d.dir, llama(FinetuneMethod::LoRA));
    FAIL() << "accepted";
  } catch (const st::FileError& e) {
    EXPECT_EQ(std::string(e.what()), d.config().string() + ": cannot be read (an adapter directory holds "
                                                           "adapter_config.json)");
  }
}

}  // namespace
}  // namespace ellm
