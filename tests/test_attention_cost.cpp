// The FLOPs and KV-cache figures the metrics take from each attention variant (NSA's are tested
// in test_nsa.cpp), against counts done by hand.
#include <gtest/gtest.h>

#include "metrics/flops.hpp"
#include "model/mixer.hpp"
#include "model/plan.hpp"

namespace ellm {
namespace {

ModelConfig base() {
  ModelConfig m;
  m.n_layers = 3;
  m.d_model = 64;
  m.n_heads = 8;  // head size 8
  m.seq_len = 10;
  return m;
}

// Weights of layer 0's attention matrices in the real parameter layout (biases excluded).
double layout_attention_weights(const ModelConfig& m) {
  double n = 0;
  const ParamLayout layout = make_param_layout(m);  // not a temporary: the loop outlives it
  for (const TensorInfo& t : layout.arena.tensors()) {
    if (t.layer == 0 && t.name.find(".attn.") != std::string::npos &&
        t.name.find(".out.") == std::string::npos && t.shape.size() == 2) {
      n += double(t.numel);
    }
  }
  return n;
}

TEST(AttentionCost, VisibleKeysAreCountedExactly) {
  EXPECT_DOUBLE_EQ(mean_visible_keys(10, 0), 5.5);  // (1 + … + 10) / 10
  EXPECT_DOUBLE_EQ(mean_visible_keys(10, 3), (1 + 2 + 3 * 8) / 10.0);
  EXPECT_DOUBLE_EQ(mean_visible_keys(10, 50), 5.5);  // a window past T is full attention
}

TEST(AttentionCost, GqaFamily) {
  ModelConfig m = base();
  const AttentionCost mha = attention_cost(m);
  EXPECT_DOUBLE_EQ(mha.matmul_weights, 3.0 * 64 * 64);  // q, k, v: 64 rows each
  EXPECT_DOUBLE_EQ(mha.matmul_weights, layout_attention_weights(m));
  EXPECT_DOUBLE_EQ(mha.kv_cache_elems_per_token, 2 * 64);
  EXPECT_DOUBLE_EQ(mha.attention_flops_per_token, 2.0 * 8 * (8 + 8) * 5.5);
  m.n_kv_heads = 1;  // MQA
  EXPECT_DOUBLE_EQ(attention_cost(m).matmul_weights, (8 + 2) * 8.0 * 64);
  EXPECT_DOUBLE_EQ(attention_cost(m).matmul_weights, layout_attention_weights(m));
  EXPECT_DOUBLE_EQ(attention_cost(m).kv_cache_elems_per_token, 2 * 8);
  EXPECT_DOUBLE_EQ(kv_cache_bytes_per_token(m), 3 * 2 * 8 * 4.0);  // 3 layers, fp32
  m.window = 3;  // sliding window: fewer keys, same cache per token
  EXPECT_DOUBLE_EQ(attention_cost(m).attention_flops_per_token, 2.0 * 8 * 16 * 2.7);
}

TEST(AttentionCost, MlaCachesOnlyTheLatentAndTheRotaryKey) {
  ModelConfig m = base();
  m.attention = AttentionKind::MLA;
  m.mla_kv_latent = 16;
  m.mla_q_latent = 12;
  m.mla_rope_dim = 4;
  const AttentionCost c = attention_cost(m);
  EXPECT_DOUBLE_EQ(c.kv_cache_elems_per_token, 16 + 4);
  // W_dq, W_uq, W_qr, W_dkv, W_uk, W_uv, W_kr
  EXPECT_DOUBLE_EQ(c.matmul_weights,
                   12.0 * 64 + 12 * 64 + 12 * 8 * 4 + 16 * 64 + 16 * 64 + 16 * 64 + 4 * 64);
  EXPECT_DOUBLE_EQ(c.matmul_weights, layout_attention_weights(m));
  EXPECT_DOUBLE_EQ(c.attention_flops_per_token, 2.0 * 8 * ((8 + 4) + 8) * 5.5);
}

}  // namespace
}  // namespace ellm
