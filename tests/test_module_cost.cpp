// The FLOPs, cache and parameter figures the metrics take from each module (NSA's attention core
// is tested in test_nsa.cpp), against counts done by hand and against the real parameter layout.
#include <gtest/gtest.h>

#include "metrics/flops.hpp"
#include "model/block.hpp"
#include "model/plan.hpp"

namespace ellm {
namespace {

ModelConfig base() {
  ModelConfig m;
  m.n_layers = 3;
  m.d_model = 64;
  m.n_heads = 8;  // head size 8
  m.d_ff = 96;
  m.seq_len = 10;
  return m;
}

// Elements of layer `l`'s matrices in the real parameter layout whose name contains `part`
// (biases and norm gains excluded: their decl is not decayed).
double layout_weights(const ModelConfig& m, int l, const std::string& part) {
  double n = 0;
  const ArenaLayout layout = make_param_layout(m);  // not a temporary: the loop outlives it
  for (const TensorInfo& t : layout.tensors()) {
    if (t.layer == l && t.decay && t.name.find(part) != std::string::npos) n += double(t.numel);
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
  const ModuleCost mha = gqa_cost(m);
  EXPECT_DOUBLE_EQ(mha.matmul_weights, 3.0 * 64 * 64);  // q, k, v: 64 rows each
  EXPECT_DOUBLE_EQ(mha.matmul_weights + 64.0 * 64, layout_weights(m, 0, ".attn."));
  EXPECT_DOUBLE_EQ(mha.cache_elems_per_token, 2 * 64);
  EXPECT_DOUBLE_EQ(mha.other_flops_per_token, 2.0 * 8 * (8 + 8) * 5.5);
  m.n_kv_heads = 1;  // MQA
  EXPECT_DOUBLE_EQ(gqa_cost(m).matmul_weights, (8 + 2) * 8.0 * 64);
  EXPECT_DOUBLE_EQ(token_mixer_cost(m).matmul_weights, layout_weights(m, 0, ".attn."));
  EXPECT_DOUBLE_EQ(gqa_cost(m).cache_elems_per_token, 2 * 8);
  EXPECT_DOUBLE_EQ(kv_cache_bytes_per_token(m), 3 * 2 * 8 * 4.0);  // 3 layers, fp32
  m.window = 3;  // sliding window: fewer keys, same cache per token
  EXPECT_DOUBLE_EQ(gqa_cost(m).other_flops_per_token, 2.0 * 8 * 16 * 2.7);
}

TEST(AttentionCost, MlaCachesOnlyTheLatentAndTheRotaryKey) {
  ModelConfig m = base();
  m.attention = AttentionKind::MLA;
  m.mla_kv_latent = 16;
  m.mla_q_latent = 12;
  m.mla_rope_dim = 4;
  const ModuleCost c = mla_cost(m);
  EXPECT_DOUBLE_EQ(c.cache_elems_per_token, 16 + 4);
  // W_dq, W_uq, W_qr, W_dkv, W_uk, W_uv, W_kr
  EXPECT_DOUBLE_EQ(c.matmul_weights,
                   12.0 * 64 + 12 * 64 + 12 * 8 * 4 + 16 * 64 + 16 * 64 + 16 * 64 + 4 * 64);
  EXPECT_DOUBLE_EQ(token_mixer_cost(m).matmul_weights, layout_weights(m, 0, ".attn."));
  EXPECT_DOUBLE_EQ(c.other_flops_per_token, 2.0 * 8 * ((8 + 4) + 8) * 5.5);
}

// Every block kind: its matmul weights by hand, and equal to the layout's matrices.
TEST(BlockCost, EachBlockKindAgainstHandCounts) {
  const double C = 64, F = 96, attn = 3 * C * C + C * C;  // MHA q, k, v and the output
  ModelConfig m = base();
  EXPECT_DOUBLE_EQ(block_cost(m).matmul_weights, attn + 2 * F * C);  // GELU MLP: fc, out
  EXPECT_DOUBLE_EQ(block_cost(m).matmul_weights, layout_weights(m, 1, "h.1."));
  m.activation = Activation::SwiGLU;  // gate and up, then down
  EXPECT_DOUBLE_EQ(block_cost(m).matmul_weights, attn + 3 * F * C);
  EXPECT_DOUBLE_EQ(block_cost(m).matmul_weights, layout_weights(m, 1, "h.1."));
  m.wiring = Wiring::Parallel;  // the same modules, wired side by side: the same cost
  m.rotary_pct = 0.25;          // partial rotary: elementwise, not counted
  m.positions = Positions::RoPE;
  EXPECT_DOUBLE_EQ(block_cost(m).matmul_weights, attn + 3 * F * C);
  EXPECT_DOUBLE_EQ(block_cost(m).matmul_weights, layout_weights(m, 1, "h.1."));
  EXPECT_DOUBLE_EQ(block_cost(m).other_flops_per_token, 2.0 * 8 * (8 + 8) * 5.5);
}

// A hybrid stack costs the sum of its layers, and the model adds the LM head.
TEST(BlockCost, HybridStackSumsItsLayers) {
  ModelConfig m = base();
  m.positions = Positions::RoPE;
  ModelConfig mla = m;
  mla.attention = AttentionKind::MLA;
  mla.mla_kv_latent = 16;
  mla.mla_rope_dim = 4;
  ModelConfig windowed = m;
  windowed.window = 4;
  windowed.d_ff = 32;
  m.layers = {m, mla, windowed};
  const ModuleCost c = model_cost(m);
  EXPECT_DOUBLE_EQ(c.matmul_weights, block_cost(m.layers[0]).matmul_weights +
                                         block_cost(mla).matmul_weights +
                                         block_cost(windowed).matmul_weights + 256.0 * 64);
  EXPECT_DOUBLE_EQ(c.cache_elems_per_token, 2 * 64 + (16 + 4) + 2 * 64);
  EXPECT_DOUBLE_EQ(forward_flops_per_token(m), 2 * c.matmul_weights + c.other_flops_per_token);
  for (int l = 0; l < 3; l++) {
    EXPECT_DOUBLE_EQ(block_cost(m.layer(l)).matmul_weights,
                     layout_weights(m, l, "h." + std::to_string(l) + "."))
        << "layer " << l;
  }
}

// Parameter counts follow from the declarations: total and trainable by hand; every tensor of
// a dense model is active for every token.
TEST(ParamCounts, FromTheDeclarations) {
  const ModelConfig m = base();  // learned positions, LayerNorm, GELU, MHA with biases
  const double C = 64, F = 96, V = 256, T = 10;
  const double block = 3 * C * C + 3 * C + C * C + C + F * C + F + C * F + C + 4 * C;
  const ParamCounts n = count_params(make_param_layout(m));
  EXPECT_DOUBLE_EQ(n.total, V * C + T * C + 3 * block + 2 * C);
  EXPECT_DOUBLE_EQ(n.trainable, n.total);
  EXPECT_DOUBLE_EQ(n.active_per_token, n.total);
}

}  // namespace
}  // namespace ellm
