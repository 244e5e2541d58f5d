// Hugging Face config.json ↔ ModelConfig (src/io/hf_config.cpp): what each architecture's keys
// become, what is refused and with which key named, and which models export as what.
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "io/hf.hpp"

namespace ellm {
namespace {
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

class HfConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ellm_test_hf_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  hf::Config read(const Json& j) {
    std::ofstream(dir_ / "config.json") << j.dump();
    return hf::read_config(dir_);
  }
  // The error's "WHERE: MESSAGE" (the file is always dir/config.json).
  std::string error(const Json& j) {
    try {
      read(j);
    } catch (const hf::Error& e) {
      EXPECT_EQ(e.file(), (dir_ / "config.json").string());
      return e.where() + ": " + e.message();
    }
    return "no error";
  }
  fs::path dir_;
};

Json llama() {
  return {{"architectures", {"LlamaForCausalLM"}}, {"hidden_size", 64}, {"intermediate_size", 96},
          {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"num_hidden_layers", 2},
          {"vocab_size", 300}, {"rms_norm_eps", 1e-6}, {"rope_theta", 5000.0}, {"hidden_act", "silu"}};
}
Json neox() {
  return {{"architectures", {"GPTNeoXForCausalLM"}}, {"hidden_size", 64}, {"intermediate_size", 256},
          {"num_attention_heads", 4}, {"num_hidden_layers", 2}, {"vocab_size", 512},
          {"rotary_pct", 0.5}, {"use_parallel_residual", false}, {"hidden_act", "gelu"}};
}

TEST_F(HfConfig, LlamaKeysBecomeTheModel) {
  const hf::Config c = read(llama());
  EXPECT_EQ(c.arch, hf::Arch::Llama);
  EXPECT_EQ(c.model.d_model, 64);
  EXPECT_EQ(c.model.kv_heads(), 2);
  EXPECT_EQ(c.model.d_ff, 96);
  EXPECT_EQ(c.model.norm, Norm::RMSNorm);
  EXPECT_EQ(c.model.activation, Activation::SwiGLU);
  EXPECT_EQ(c.model.bias, Bias::None);
  EXPECT_FALSE(c.model.tie_embeddings);  // Llama's default
  EXPECT_EQ(c.model.rope_base, 5000.0);
  EXPECT_EQ(c.model.norm_eps, 1e-6);
  EXPECT_EQ(c.max_positions, 2048);
}

TEST_F(HfConfig, NeoxDefaultsAndSequentialResidual) {
  const hf::Config c = read(neox());
  EXPECT_EQ(c.arch, hf::Arch::GPTNeoX);
  EXPECT_EQ(c.model.wiring, Wiring::Sequential);
  EXPECT_EQ(c.model.activation, Activation::GELUExact);
  EXPECT_EQ(c.model.rotary_dim(), 8);
  EXPECT_EQ(c.model.norm, Norm::LayerNorm);
  EXPECT_EQ(c.model.norm_eps, 1e-5);
  EXPECT_EQ(c.model.bias, Bias::All);
  EXPECT_EQ(c.model.kv_heads(), 4);
}

TEST_F(HfConfig, RefusesByKey) {
  Json j = llama();
  j["hidden_act"] = "gelu";
  EXPECT_EQ(error(j), "/hidden_act: unsupported value \"gelu\": the MLP is SwiGLU (silu) only");
  j = llama();
  j.erase("hidden_size");
  EXPECT_EQ(error(j), "/hidden_size: missing: a positive integer is required");
  j = llama();
  j["num_key_value_heads"] = 3;
  EXPECT_EQ(error(j), "/num_key_value_heads: must divide num_attention_heads (4)");
  j = llama();
  j["head_dim"] = 32;
  EXPECT_EQ(error(j), "/head_dim: unsupported value 32: the head size must be hidden_size / "
                      "num_attention_heads (16)");
  j = llama();
  j["architectures"] = {"Qwen2ForCausalLM"};
  j["use_sliding_window"] = true;
  EXPECT_EQ(error(j), "/use_sliding_window: sliding-window attention (Qwen2's per-layer windows) is not supported");
  j = neox();
  j["hidden_dropout"] = 0.1;
  EXPECT_EQ(error(j), "/hidden_dropout: unsupported value 0.1: dropout is not supported");
  j = neox();
  j["hidden_act"] = "relu";
  EXPECT_EQ(error(j), "/hidden_act: unsupported value \"relu\": supported are \"gelu\" (erf), "
                      "\"gelu_new\" and \"gelu_pytorch_tanh\" (tanh)");
  j = llama();
  j["torch_dtype"] = "float64";
  EXPECT_EQ(error(j), "/torch_dtype: must be \"float32\", \"bfloat16\" or \"float16\", got \"float64\"");
}

// What export writes, import reads back as the same model, for each architecture.
TEST_F(HfConfig, ExportedConfigReadsBack) {
  for (const Json& j : {llama(), neox()}) {
    const hf::Config first = read(j);
    const hf::Config again = read(hf::config_json(first.model, first.arch, 128));
    EXPECT_EQ(again.arch, first.arch);
    EXPECT_EQ(again.max_positions, 128);
    EXPECT_EQ(nlohmann::json(hf::config_json(again.model, again.arch, 128)),
              nlohmann::json(hf::config_json(first.model, first.arch, 128)));
  }
  ModelConfig qwen = read(llama()).model;
  qwen.bias = Bias::QKV;
  qwen.tie_embeddings = true;
  EXPECT_EQ(hf::export_arch(qwen), hf::Arch::Qwen2);
  const hf::Config back = read(hf::config_json(qwen, hf::Arch::Qwen2, 64));
  EXPECT_EQ(back.model.bias, Bias::QKV);
  EXPECT_TRUE(back.model.tie_embeddings);
}

TEST(HfExport, RefusesModelsNoArchitectureDescribes) {
  const auto where = [](const ModelConfig& m) {
    try {
      hf::export_arch(m);
    } catch (const hf::Error& e) {
      return e.where();
    }
    return std::string("exported");
  };
  ModelConfig m;  // GPT-2 style: learned positions
  EXPECT_EQ(where(m), "/model/positions");
  m.positions = Positions::RoPE;
  EXPECT_EQ(where(m), "exported");  // LayerNorm, GELU, all biases: GPT-NeoX
  m.activation = Activation::SwiGLU;
  EXPECT_EQ(where(m), "/model/activation");
  m.norm = Norm::RMSNorm;
  EXPECT_EQ(where(m), "/model/bias");
  m.bias = Bias::None;
  EXPECT_EQ(hf::export_arch(m), hf::Arch::Llama);
  m.mlp = ChannelMixerKind::MoE;
  EXPECT_EQ(where(m), "/model/mlp");
}

}  // namespace
}  // namespace ellm
