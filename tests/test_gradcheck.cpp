// Every layer's backward, and the whole model's, against finite differences in double precision;
// and the checker itself: it visits every row and column, and it fails on wrong gradients.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "layers/activation.hpp"
#include "layers/attention.hpp"
#include "layers/crossentropy.hpp"
#include "layers/embedding.hpp"
#include "layers/linear.hpp"
#include "layers/norm.hpp"
#include "layers/rope.hpp"
#include "model/gpt.hpp"
#include "support/gradcheck.hpp"

namespace ellm {
namespace {
using testing::check_gradient;
using testing::expect_gradient_matches;
using testing::gradient_sample;
using testing::GradientReport;
using testing::MatrixShape;
using testing::random_doubles;
using testing::weighted_sum;
using Vec = std::vector<double>;

TEST(GradCheck, Linear) {
  const int N = 5, C = 7, OC = 6;
  Vec inp = random_doubles(N * C, 1), W = random_doubles(OC * C, 2), b = random_doubles(OC, 3);
  const Vec w = random_doubles(N * OC, 4);
  Vec out(N * OC);
  auto loss = [&] {
    layers::linear_forward(out.data(), inp.data(), W.data(), b.data(), N, C, OC);
    return weighted_sum(out, w);
  };
  Vec dinp(N * C), dW(OC * C, 0.0), db(OC, 0.0);
  layers::linear_backward(dinp.data(), dW.data(), db.data(), w.data(), inp.data(), W.data(), N, C, OC);
  expect_gradient_matches(inp, dinp, loss, "dinp", {N, C});
  expect_gradient_matches(W, dW, loss, "dW", {OC, C});
  expect_gradient_matches(b, db, loss, "db", {1, OC});
}

TEST(GradCheck, LayerNorm) {
  const int N = 4, C = 9;
  Vec inp = random_doubles(N * C, 5, 2.0), g = random_doubles(C, 6), b = random_doubles(C, 7);
  const Vec w = random_doubles(N * C, 8);
  Vec out(N * C), mean(N), rstd(N);
  auto loss = [&] {
    layers::layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), g.data(), b.data(), N, C, 1e-5);
    return weighted_sum(out, w);
  };
  loss();
  Vec dinp(N * C, 0.0), dg(C, 0.0), db(C, 0.0);
  layers::layernorm_backward(dinp.data(), dg.data(), db.data(), w.data(), inp.data(), g.data(),
                             mean.data(), rstd.data(), N, C);
  expect_gradient_matches(inp, dinp, loss, "dinp", {N, C});
  expect_gradient_matches(g, dg, loss, "dweight", {1, C});
  expect_gradient_matches(b, db, loss, "dbias", {1, C});
}

TEST(GradCheck, RMSNorm) {
  const int N = 4, C = 9;
  Vec inp = random_doubles(N * C, 9, 2.0), g = random_doubles(C, 10);
  const Vec w = random_doubles(N * C, 11);
  Vec out(N * C), rstd(N);
  auto loss = [&] {
    layers::rmsnorm_forward(out.data(), rstd.data(), inp.data(), g.data(), N, C, 1e-5);
    return weighted_sum(out, w);
  };
  loss();
  Vec dinp(N * C, 0.0), dg(C, 0.0);
  layers::rmsnorm_backward(dinp.data(), dg.data(), w.data(), inp.data(), g.data(), rstd.data(), N, C);
  expect_gradient_matches(inp, dinp, loss, "dinp", {N, C});
  expect_gradient_matches(g, dg, loss, "dweight", {1, C});
}

TEST(GradCheck, GELU) {
  const long n = 40;
  Vec inp = random_doubles(n, 12, 2.0);
  const Vec w = random_doubles(n, 13);
  Vec out(n), dinp(n);
  auto loss = [&] {
    layers::gelu_forward(out.data(), inp.data(), n);
    return weighted_sum(out, w);
  };
  layers::gelu_backward(dinp.data(), inp.data(), w.data(), n);
  expect_gradient_matches(inp, dinp, loss, "dinp", {1, n});
}

TEST(GradCheck, GELUExact) {
  const long n = 40;
  Vec inp = random_doubles(n, 16, 2.0);
  const Vec w = random_doubles(n, 17);
  Vec out(n), dinp(n);
  auto loss = [&] {
    layers::gelu_exact_forward(out.data(), inp.data(), n);
    return weighted_sum(out, w);
  };
  layers::gelu_exact_backward(dinp.data(), inp.data(), w.data(), n);
  expect_gradient_matches(inp, dinp, loss, "dinp", {1, n});
}

TEST(GradCheck, SwiGLU) {
  const int N = 3, F = 8;
  Vec inp = random_doubles(N * 2 * F, 14, 2.0);
  const Vec w = random_doubles(N * F, 15);
  Vec out(N * F), dinp(N * 2 * F);
  auto loss = [&] {
    layers::swiglu_forward(out.data(), inp.data(), N, F);
    return weighted_sum(out, w);
  };
  layers::swiglu_backward(dinp.data(), inp.data(), w.data(), N, F);
  expect_gradient_matches(inp, dinp, loss, "dinp", {N, 2 * F});
}

TEST(GradCheck, EmbeddingOfOneVocabularyShardAndPositions) {
  const int B = 2, T = 5, C = 4, V = 7, v0 = 2, v1 = 6;  // this shard holds tokens 2…5
  const std::vector<int> tokens = {0, 3, 6, 3, 1, 2, 2, 5, 0, 4};
  Vec wte = random_doubles((v1 - v0) * C, 16), wpe = random_doubles(T * C, 17);
  const Vec w = random_doubles(B * T * C, 18);
  Vec out(B * T * C);
  auto loss = [&] {
    layers::embedding_forward(out.data(), tokens.data(), wte.data(), B, T, C, v0, v1);
    layers::positions_forward(out.data(), wpe.data(), B * T, 0, T, C);
    return weighted_sum(out, w);
  };
  Vec dwte(wte.size(), 0.0), dwpe(T * C, 0.0);
  layers::embedding_backward(dwte.data(), w.data(), tokens.data(), B, T, C, v0, v1);
  layers::positions_backward(dwpe.data(), w.data(), B * T, 0, T, C);
  expect_gradient_matches(wte, dwte, loss, "dwte", {v1 - v0, C});
  expect_gradient_matches(wpe, dwpe, loss, "dwpe", {T, C});
}

TEST(GradCheck, RoPE) {
  const int B = 2, T = 6, H = 2, Hkv = 1, hs = 8, row = (H + 2 * Hkv) * hs;
  Vec qkv = random_doubles(B * T * row, 19);
  const Vec w = random_doubles(B * T * row, 20);
  Vec rotated;
  auto loss = [&] {
    rotated = qkv;
    layers::rope_forward(rotated.data(), B, T, row, H + Hkv, hs, hs, 100.0);
    return weighted_sum(rotated, w);
  };
  Vec d = w;
  layers::rope_backward(d.data(), B, T, row, H + Hkv, hs, hs, 100.0);
  expect_gradient_matches(qkv, d, loss, "dqkv", {B * T, row});
}

// GPT-NeoX's partial rotary: the first rot of each head's hs dimensions turn, the rest pass.
TEST(GradCheck, PartialRoPE) {
  const int B = 2, T = 6, H = 3, hs = 8, rot = 4, row = H * hs;
  Vec x = random_doubles(B * T * row, 24);
  const Vec w = random_doubles(B * T * row, 25);
  Vec rotated;
  auto loss = [&] {
    rotated = x;
    layers::rope_forward(rotated.data(), B, T, row, H, hs, rot, 100.0);
    return weighted_sum(rotated, w);
  };
  loss();
  for (int n = 0; n < B * T; n++) {  // the last hs − rot dimensions of every head are untouched
    for (int h = 0; h < H; h++) {
      for (int i = rot; i < hs; i++) {
        const std::size_t k = std::size_t(n) * row + h * hs + i;
        ASSERT_EQ(rotated[k], x[k]);
      }
    }
  }
  Vec d = w;
  layers::rope_backward(d.data(), B, T, row, H, hs, rot, 100.0);
  expect_gradient_matches(x, d, loss, "dx", {B * T, row});
}

TEST(GradCheck, TiledAttentionAcrossTilesWithGQA) {
  const layers::AttentionShape s{2, 13, 4, 2, 4, 4};
  const int tile = 4;  // several tiles and a ragged last one
  Vec qkv = random_doubles(std::size_t(s.B) * s.T * s.row(), 21);
  const Vec w = random_doubles(std::size_t(s.B) * s.T * s.out_row(), 22);
  Vec out(w.size()), lse(std::size_t(s.B) * s.H * s.T);
  auto loss = [&] {
    layers::attention_forward(out.data(), lse.data(), qkv.data(), s, tile);
    return weighted_sum(out, w);
  };
  loss();
  Vec dqkv(qkv.size(), 0.0);
  layers::attention_backward(dqkv.data(), w.data(), out.data(), lse.data(), qkv.data(), s, tile);
  expect_gradient_matches(qkv, dqkv, loss, "dqkv", {s.B * s.T, s.row()});
}

// The loss is Σ counted losses / divisor; a target of kIgnoredTarget adds nothing and gets a zero
// gradient row (instruction data's prompt tokens), and the divisor is whatever the caller counts.
void check_crossentropy(const std::vector<int>& targets, double divisor) {
  const int N = int(targets.size()), V = 6;
  Vec logits = random_doubles(N * V, 23, 3.0);
  Vec probs(N * V), losses(N), rows(3 * N);
  auto loss = [&] {
    probs = logits;
    return layers::crossentropy_forward(probs.data(), losses.data(), targets.data(), N, V, 0,
                                        rows.data()) / divisor;
  };
  loss();
  Vec dlogits = probs;
  layers::crossentropy_backward(dlogits.data(), targets.data(), N, V, 0, divisor);
  expect_gradient_matches(logits, dlogits, loss, "dlogits", {N, V});
}

TEST(GradCheck, CrossEntropy) { check_crossentropy({1, 5, 0, 3}, 4.0); }

TEST(GradCheck, CrossEntropyMaskedTargets) {
  const int x = layers::kIgnoredTarget;
  // 3 counted targets, divided by 5 (say the mean count per replica of a larger batch)
  check_crossentropy({x, 5, x, 3, 0, x}, 5.0);
  Vec logits = random_doubles(2 * 6, 5, 3.0), losses(2), rows(6);
  const std::vector<int> targets = {x, 2};
  layers::crossentropy_forward(logits.data(), losses.data(), targets.data(), 2, 6, 0, rows.data());
  layers::crossentropy_backward(logits.data(), targets.data(), 2, 6, 0, 1.0);
  EXPECT_EQ(losses[0], 0.0);
  for (int v = 0; v < 6; v++) EXPECT_EQ(logits[v], 0.0) << v;  // the ignored row: no gradient
  EXPECT_GT(losses[1], 0.0);
}

// ---- the checker itself ----

TEST(GradCheckSampling, SmallTensorsWhollyLargeOnesInEveryRowAndColumn) {
  EXPECT_EQ(gradient_sample({6, 4}, 24).size(), 24u);  // within the budget: every element
  for (const MatrixShape s :
       {MatrixShape(24, 8), MatrixShape(8, 24), MatrixShape(7, 7), MatrixShape(6, 4),
        MatrixShape(1, 1000), MatrixShape(1000, 1), MatrixShape(std::vector<int>{3, 4, 10})}) {
    for (const std::size_t budget : {std::size_t(0), std::size_t(12), std::size_t(100)}) {
      const std::vector<std::size_t> idx = gradient_sample(s, budget);
      std::vector<bool> row_seen(s.rows), col_seen(s.cols);
      for (const std::size_t i : idx) {
        ASSERT_LT(i, s.size());
        row_seen[i / s.cols] = col_seen[i % s.cols] = true;
      }
      const std::string what = std::to_string(s.rows) + "×" + std::to_string(s.cols) + " budget " +
                               std::to_string(budget);
      EXPECT_EQ(std::count(row_seen.begin(), row_seen.end(), false), 0) << what;
      EXPECT_EQ(std::count(col_seen.begin(), col_seen.end(), false), 0) << what;
      EXPECT_TRUE(std::is_sorted(idx.begin(), idx.end()) &&
                  std::adjacent_find(idx.begin(), idx.end()) == idx.end());
      EXPECT_GE(idx.size(), std::min(s.size(), std::max(budget, std::max(s.rows, s.cols))));
      EXPECT_LE(idx.size(), std::max(budget, std::max(s.rows, s.cols) + testing::kExtraSamples))
          << what;
    }
  }
  EXPECT_EQ(MatrixShape(std::vector<int>{3, 4, 10}).rows, 12u);  // leading dimensions are rows
  EXPECT_EQ(MatrixShape(std::vector<int>{5}).rows, 1u);
}

// A linear layer with a weight of 24 rows of 8: an even stride over its 192 elements, 192 / 12 = 16
// apart, only ever lands in column 0. `scale` sets the size of the gradients (dout = scale · w).
struct LinearRig {
  static constexpr int N = 5, C = 8, OC = 24;
  Vec inp = random_doubles(N * C, 101), W = random_doubles(OC * C, 102),
      b = random_doubles(OC, 103);
  Vec w, out = Vec(N * OC), dinp = Vec(N * C), dW = Vec(OC * C, 0.0), db = Vec(OC, 0.0);
  explicit LinearRig(double scale) : w(random_doubles(N * OC, 104, scale)) {
    layers::linear_backward(dinp.data(), dW.data(), db.data(), w.data(), inp.data(), W.data(), N, C,
                            OC);
  }
  double loss() {
    layers::linear_forward(out.data(), inp.data(), W.data(), b.data(), N, C, OC);
    return weighted_sum(out, w);
  }
};

TEST(GradCheckCanFail, OneWrongColumnOfAWeightMatrixIsFoundWhenSampling) {
  LinearRig r(1.0);
  const auto loss = [&] { return r.loss(); };
  const MatrixShape shape{LinearRig::OC, LinearRig::C};
  const int bad_col = 5;
  for (std::size_t i = 0; i < r.dW.size(); i += r.dW.size() / 12) {
    ASSERT_NE(int(i % LinearRig::C), bad_col) << "the old even stride would have seen the column";
  }
  const GradientReport right = check_gradient(r.W, r.dW, loss, shape, 12);
  EXPECT_EQ(right.failures, 0u);
  EXPECT_LT(right.checked, r.dW.size());  // sampled, not exhaustive
  Vec wrong = r.dW;
  for (int o = 0; o < LinearRig::OC; o++) wrong[o * LinearRig::C + bad_col] *= 1 + 1e-4;
  const GradientReport found = check_gradient(r.W, wrong, loss, shape, 12);
  EXPECT_GE(found.failures, 3u);  // rows 5, 13 and 21 of the diagonal at least
  EXPECT_EQ(int(found.index % LinearRig::C), bad_col);
  EXPECT_NEAR(found.worst, 1e-4, 2e-5);
  EXPECT_NONFATAL_FAILURE(expect_gradient_matches(r.W, wrong, loss, "dW", shape, 12), "dW[");
  EXPECT_EQ(r.W, LinearRig(1.0).W);  // every perturbation was undone
}

// A gradient wrong by a relative 1e-3 must fail however small it is: at |g| ~ 1e-2, and at
// |g| ~ 1e-4 where the old measure, absolute below |g| = 1, saw errors of 1e-7 and passed.
TEST(GradCheckCanFail, SmallGradientsWrongByARelative1e3) {
  for (const double scale : {1e-2, 3e-5}) {  // dW = Σₙ dout · inp over 5 rows: |dW| ~ 2.2 · scale
    LinearRig r(scale);
    const auto loss = [&] { return r.loss(); };
    const MatrixShape shape{LinearRig::OC, LinearRig::C};
    const GradientReport right = check_gradient(r.W, r.dW, loss, shape);
    EXPECT_EQ(right.failures, 0u) << scale;
    EXPECT_EQ(right.checked, r.dW.size());
    Vec wrong = r.dW;
    for (double& g : wrong) g *= 1 + 1e-3;
    const GradientReport found = check_gradient(r.W, wrong, loss, shape);
    EXPECT_GT(found.failures, found.checked * 9 / 10) << scale;  // all but the tiniest elements
    EXPECT_GT(found.worst, 50 * testing::kGradientTolerance) << scale;
    EXPECT_NONFATAL_FAILURE(expect_gradient_matches(r.W, wrong, loss, "dW", shape), "dW[");
    // The worst element has the largest |g|, so the largest error under the old measure too.
    const double old_measure =
        std::fabs(found.numeric - found.analytic) / std::max(1.0, std::fabs(found.numeric));
    if (scale < 1e-3) {
      EXPECT_LT(old_measure, testing::kGradientTolerance) << "the old check passed this";
    }
  }
}

// The floor: below 1e-3 an error is measured against 1e-3, i.e. an absolute slack of 1e-9.
TEST(GradCheckCanFail, TheFloorIsAnAbsoluteSlackOf1e9ForTinyGradients) {
  EXPECT_LT(testing::gradient_error(1e-6 + 0.5e-9, 1e-6), testing::kGradientTolerance);
  EXPECT_GT(testing::gradient_error(1e-6 + 2e-9, 1e-6), testing::kGradientTolerance);
  // a gradient that should be 0
  EXPECT_GT(testing::gradient_error(0.0, 2e-9), testing::kGradientTolerance);
  EXPECT_GT(testing::gradient_error(10.0, 10.0 * (1 + 2e-6)), testing::kGradientTolerance);
  EXPECT_LT(testing::gradient_error(10.0, 10.0 * (1 + 0.5e-6)), testing::kGradientTolerance);
}

// Every element of every parameter of the model against finite differences. The parameters are
// the init scaled by 5, so every path carries a visible gradient, plus `jitter` · N(0,1) for
// models with zero-initialised tensors (RWKV's low-rank mixes) whose paths would else be idle.
// With `ignore_every` > 0 every such target is layers::kIgnoredTarget (instruction data's prompt
// tokens) and the loss is divided by `divisor` (data parallelism: the global batch's counted
// targets over dp) instead of this batch's count.
void check_model_gradients(const ModelConfig& cfg, double jitter, int ignore_every = 0,
                           double divisor = 0) {
  const int B = 2;
  GPT<double> model(cfg, B);
  model.init_params(42);
  Rng noise(7);
  for (std::size_t i = 0; i < model.num_params(); i++) {
    model.params()[i] = model.params()[i] * 5.0 + (jitter > 0 ? jitter * noise.normal() : 0.0);
  }
  Rng rng(3);
  std::vector<int> tokens(B * cfg.seq_len), targets(tokens.size());
  for (std::size_t i = 0; i < tokens.size(); i++) {
    tokens[i] = int(rng.below(cfg.vocab_size));
    targets[i] = int(rng.below(cfg.vocab_size));
    if (ignore_every > 0 && i % ignore_every == 0) targets[i] = layers::kIgnoredTarget;
  }
  model.zero_grad();
  model.forward(tokens.data(), targets.data(), B, divisor);
  model.backward();
  Vec params(model.params(), model.params() + model.num_params());
  const Vec grads(model.grads(), model.grads() + model.num_params());
  auto loss = [&] {  // the objective: the language-model loss and any routing terms
    std::copy(params.begin(), params.end(), model.params());
    return model.forward(tokens.data(), targets.data(), B, divisor) + model.aux_loss();
  };
  // Every element of every tensor (all are within the default budget): no parameter escapes.
  for (const TensorInfo& t : model.param_layout().tensors()) {
    const std::size_t n = MatrixShape(t.shape).size();
    Vec x(params.begin() + t.offset, params.begin() + t.offset + n);
    const Vec g(grads.begin() + t.offset, grads.begin() + t.offset + n);
    auto tensor_loss = [&] {
      std::copy(x.begin(), x.end(), params.begin() + t.offset);
      return loss();
    };
    expect_gradient_matches(x, g, tensor_loss, t.name, t.shape);
    std::copy(x.begin(), x.end(), params.begin() + t.offset);
  }
}

class ModelGradCheck : public ::testing::TestWithParam<ModelConfig> {};

TEST_P(ModelGradCheck, WholeModel) { check_model_gradients(GetParam(), 0.0); }

ModelConfig tiny(Norm norm, Activation act, Positions pos) {
  ModelConfig m;
  m.vocab_size = 11;  // the layers do not care; small keeps the check fast
  m.n_layers = 2;
  m.d_model = 8;
  m.n_heads = 2;
  m.d_ff = 12;
  m.seq_len = 5;
  m.norm = norm;
  m.activation = act;
  m.positions = pos;
  return m;
}

// Attention variants on top of tiny(): heads, kv heads, window, latent sizes.
ModelConfig variant(Positions pos, int n_heads, int n_kv_heads, int window = 0) {
  ModelConfig m = tiny(Norm::RMSNorm, Activation::GELU, pos);
  m.n_heads = n_heads;
  m.n_kv_heads = n_kv_heads;
  m.window = window;
  return m;
}
ModelConfig mla(int q_latent) {
  ModelConfig m = tiny(Norm::LayerNorm, Activation::SwiGLU, Positions::RoPE);
  m.attention = AttentionKind::MLA;
  m.mla_kv_latent = 6;
  m.mla_q_latent = q_latent;
  m.mla_rope_dim = 2;
  return m;
}

// Pythia's block: parallel wiring, partial rotary (head size 4, 2 rotary dimensions), LayerNorm, GELU.
ModelConfig pythia() {
  ModelConfig m = tiny(Norm::LayerNorm, Activation::GELU, Positions::RoPE);
  m.wiring = Wiring::Parallel;
  m.rotary_pct = 0.5;
  return m;
}
// The Hugging Face architectures' blocks (docs/HF_IMPORT.md): Llama (no biases, untied head, GQA),
// Qwen2 (q, k, v biases only), GPT-NeoX with exact GELU and an untied head.
ModelConfig hf_block(Bias bias, Activation act, Wiring wiring) {
  ModelConfig m = variant(Positions::RoPE, 4, 2);
  m.bias = bias;
  m.activation = act;
  m.wiring = wiring;
  m.tie_embeddings = false;
  if (wiring == Wiring::Parallel) m.norm = Norm::LayerNorm;
  return m;
}
// A hybrid stack: a GQA layer, an MLA layer, a parallel-wired windowed layer with its own d_ff.
ModelConfig hybrid() {
  ModelConfig m = tiny(Norm::RMSNorm, Activation::SwiGLU, Positions::RoPE);
  m.n_layers = 3;
  ModelConfig latent = mla(4), parallel = m;
  latent.norm = Norm::RMSNorm;
  latent.n_layers = 3;
  parallel.wiring = Wiring::Parallel;
  parallel.window = 2;
  parallel.d_ff = 6;
  m.layers = {m, latent, parallel};
  return m;
}

// Mixtures of experts: top-2 of 4 GELU experts with both routing losses; renormalised top-2 of 3
// SwiGLU experts with a shared expert; a capacity that drops assignments. Layer 0 stays dense.
ModelConfig moe(Activation act, int experts, bool renormalize, int shared, double capacity) {
  ModelConfig m = tiny(Norm::RMSNorm, act, Positions::RoPE);
  ModelConfig routed = m;
  routed.mlp = ChannelMixerKind::MoE;
  routed.moe_experts = experts;
  routed.moe_renormalize = renormalize;
  routed.moe_shared_experts = shared;
  routed.moe_capacity_factor = capacity;
  routed.moe_d_ff = 6;
  routed.moe_aux_coeff = 0.5;  // large, so its gradient is visible next to the cross-entropy's
  routed.moe_z_coeff = 0.05;
  m.layers = {m, routed};
  return m;
}

// A mixer-only block (mlp "none", Mamba's layout) under a dense one.
ModelConfig mixer_only() {
  ModelConfig m = tiny(Norm::RMSNorm, Activation::GELU, Positions::RoPE);
  ModelConfig bare = m;
  bare.mlp = ChannelMixerKind::None;
  m.layers = {bare, m};
  return m;
}

// Mamba (docs/ATTENTION_FREE.md): a pure Mamba stack with no positions or learned ones, chunks
// that do not divide seq_len; and a hybrid, an attention layer (RoPE) then a Mamba layer.
ModelConfig mamba(Positions pos) {
  ModelConfig m = tiny(Norm::RMSNorm, Activation::SwiGLU, pos);
  m.token_mixer = TokenMixerKind::Mamba;
  m.mamba_d_state = 3;
  m.mamba_d_conv = 3;
  m.mamba_chunk = 2;
  return m;
}
ModelConfig mamba_hybrid() {
  ModelConfig m = mamba(Positions::RoPE);
  ModelConfig attention = tiny(Norm::RMSNorm, Activation::SwiGLU, Positions::RoPE);
  m.layers = {attention, m};
  return m;
}

std::string config_name(const ModelConfig& m) {
  if (!m.layers.empty() && m.layers[0].mlp == ChannelMixerKind::None) return "MixerOnlyBlock";
  if (!m.layers.empty() && m.layers[1].token_mixer == TokenMixerKind::Mamba) return "Hybrid_GQA_Mamba";
  if (m.token_mixer == TokenMixerKind::Mamba)
    return std::string("Mamba_") + (m.positions == Positions::None ? "None" : "Learned");
  if (!m.layers.empty() && m.layers[1].mlp == ChannelMixerKind::MoE) {
    const ModelConfig& r = m.layers[1];
    return "MoE_E" + std::to_string(r.moe_experts) + (r.moe_renormalize ? "_renorm" : "") +
           (r.moe_shared_experts ? "_shared" : "") + (r.moe_capacity_factor > 0 ? "_capacity" : "");
  }
  if (!m.layers.empty()) return "Hybrid_GQA_MLA_ParallelWindow";
  if (!m.tie_embeddings) {
    static const char* bias[] = {"AllBiases", "NoBias", "QkvBias"};
    static const char* act[] = {"GELU", "SwiGLU", "GELUExact"};
    return std::string("UntiedHead_") + bias[int(m.bias)] + "_" + act[int(m.activation)] +
           (m.wiring == Wiring::Parallel ? "_Parallel" : "");
  }
  if (m.wiring == Wiring::Parallel) return "Pythia_ParallelWiring_PartialRotary";
  static const char* positions[] = {"Learned", "RoPE", "Sinusoidal", "ALiBi", "None"};
  std::string name = m.attention == AttentionKind::MLA ? "MLA_q" + std::to_string(m.mla_q_latent)
                                                        : "H" + std::to_string(m.n_heads) + "_KV" +
                                                              std::to_string(m.kv_heads());
  name += std::string("_") + (m.norm == Norm::LayerNorm ? "LayerNorm" : "RMSNorm") +
          (m.activation == Activation::GELU ? "_GELU_" : "_SwiGLU_") + positions[int(m.positions)];
  return m.window > 0 ? name + "_window" + std::to_string(m.window) : name;
}

INSTANTIATE_TEST_SUITE_P(
    Variants, ModelGradCheck,
    ::testing::Values(tiny(Norm::LayerNorm, Activation::GELU, Positions::Learned),
                      tiny(Norm::RMSNorm, Activation::SwiGLU, Positions::RoPE),
                      variant(Positions::RoPE, 4, 1),         // MQA
                      variant(Positions::RoPE, 4, 2),         // GQA
                      variant(Positions::None, 2, 0, 2),      // sliding window
                      variant(Positions::ALiBi, 4, 2, 3),     // ALiBi with GQA and a window
                      variant(Positions::Sinusoidal, 2, 0),   // fixed absolute positions
                      mla(0), mla(4),                         // MLA without / with query latent
                      pythia(), hybrid(),
                      hf_block(Bias::None, Activation::SwiGLU, Wiring::Sequential),
                      hf_block(Bias::QKV, Activation::SwiGLU, Wiring::Sequential),
                      hf_block(Bias::All, Activation::GELUExact, Wiring::Parallel),
                      moe(Activation::GELU, 4, false, 0, 0.0),
                      moe(Activation::SwiGLU, 3, true, 1, 0.0), moe(Activation::GELU, 4, false, 0, 0.5),
                      mixer_only(), mamba(Positions::None), mamba(Positions::Learned),
                      mamba_hybrid()),
    [](const ::testing::TestParamInfo<ModelConfig>& i) { return config_name(i.param); });

// RWKV-6 (docs/ATTENTION_FREE.md) on top of tiny(): 2 heads of 4, chunks of 2 over 5 tokens
// (a ragged last chunk), low ranks 2 and 3. Time mix with the dense MLP, the channel mix behind
// attention, both together, and a hybrid stack of attention and RWKV layers.
ModelConfig rwkv(TokenMixerKind mixer, ChannelMixerKind mlp) {
  ModelConfig m = tiny(Norm::LayerNorm, Activation::GELU, Positions::None);
  m.token_mixer = mixer;
  m.mlp = mlp;
  m.rwkv_head_size = 4;
  m.rwkv_chunk = 2;
  m.rwkv_mix_lora = 2;
  m.rwkv_decay_lora = 3;
  return m;
}
ModelConfig rwkv_hybrid() {
  ModelConfig m = rwkv(TokenMixerKind::RWKV6, ChannelMixerKind::RWKV);
  m.n_layers = 3;
  ModelConfig attention = m, parallel = m;
  attention.token_mixer = TokenMixerKind::Attention;
  attention.mlp = ChannelMixerKind::Dense;
  parallel.wiring = Wiring::Parallel;
  parallel.mlp = ChannelMixerKind::Dense;
  m.layers = {m, attention, parallel};
  return m;
}

// Jitter 0.3: the zero-initialised low-rank mixes carry a gradient, and the channel mix's relu²
// pre-activations lie far from 0 compared with the stencil (relu² has no second derivative at 0,
// so a central difference across it is off by O(step); with jitter 0 it is, for a few elements).
class RwkvModelGradCheck : public ::testing::TestWithParam<std::pair<std::string, ModelConfig>> {};

TEST_P(RwkvModelGradCheck, WholeModel) { check_model_gradients(GetParam().second, 0.3); }

INSTANTIATE_TEST_SUITE_P(
    Rwkv, RwkvModelGradCheck,
    ::testing::Values(std::pair{std::string("TimeMix_DenseMlp"), rwkv(TokenMixerKind::RWKV6, ChannelMixerKind::Dense)},
                      std::pair{std::string("Attention_ChannelMix"), rwkv(TokenMixerKind::Attention, ChannelMixerKind::RWKV)},
                      std::pair{std::string("TimeMix_ChannelMix"), rwkv(TokenMixerKind::RWKV6, ChannelMixerKind::RWKV)},
                      std::pair{std::string("Hybrid_RWKV_GQA_ParallelRWKV"), rwkv_hybrid()}),
    [](const auto& i) { return i.param.first; });

// Instruction data: a third of the targets masked, the loss divided by a figure other than the
// batch's count (as a replica does under data parallelism).
TEST(ModelGradCheckMasked, IgnoredTargetsAndAGlobalDivisor) {
  check_model_gradients(tiny(Norm::RMSNorm, Activation::SwiGLU, Positions::RoPE), 0.0, 3, 8.5);
}

}  // namespace
}  // namespace ellm
