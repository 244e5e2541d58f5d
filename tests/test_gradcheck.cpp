// Every layer's backward, and the whole model's, against finite differences in double precision.
#include <gtest/gtest.h>

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
using testing::expect_gradient_matches;
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
  expect_gradient_matches(inp, dinp, loss, "dinp");
  expect_gradient_matches(W, dW, loss, "dW");
  expect_gradient_matches(b, db, loss, "db");
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
  expect_gradient_matches(inp, dinp, loss, "dinp");
  expect_gradient_matches(g, dg, loss, "dweight");
  expect_gradient_matches(b, db, loss, "dbias");
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
  expect_gradient_matches(inp, dinp, loss, "dinp");
  expect_gradient_matches(g, dg, loss, "dweight");
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
  expect_gradient_matches(inp, dinp, loss, "dinp");
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
  expect_gradient_matches(inp, dinp, loss, "dinp");
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
  expect_gradient_matches(wte, dwte, loss, "dwte");
  expect_gradient_matches(wpe, dwpe, loss, "dwpe");
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
  expect_gradient_matches(qkv, d, loss, "dqkv");
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
  expect_gradient_matches(x, d, loss, "dx");
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
  expect_gradient_matches(qkv, dqkv, loss, "dqkv");
}

TEST(GradCheck, CrossEntropy) {
  const int N = 4, V = 6;
  const std::vector<int> targets = {1, 5, 0, 3};
  Vec logits = random_doubles(N * V, 23, 3.0);
  Vec probs(N * V), losses(N), rows(3 * N);
  auto loss = [&] {
    probs = logits;
    return layers::crossentropy_forward(probs.data(), losses.data(), targets.data(), N, V, 0, rows.data());
  };
  loss();
  Vec dlogits = probs;
  layers::crossentropy_backward(dlogits.data(), targets.data(), N, V, 0);
  expect_gradient_matches(logits, dlogits, loss, "dlogits");
}

class ModelGradCheck : public ::testing::TestWithParam<ModelConfig> {};

TEST_P(ModelGradCheck, WholeModel) {
  const ModelConfig cfg = GetParam();
  const int B = 2;
  GPT<double> model(cfg, B);
  model.init_params(42);
  // Larger weights than the training init, so every path carries a visible gradient.
  for (std::size_t i = 0; i < model.num_params(); i++) model.params()[i] *= 5.0;
  Rng rng(3);
  std::vector<int> tokens(B * cfg.seq_len), targets(tokens.size());
  for (std::size_t i = 0; i < tokens.size(); i++) {
    tokens[i] = int(rng.below(cfg.vocab_size));
    targets[i] = int(rng.below(cfg.vocab_size));
  }
  model.zero_grad();
  model.forward(tokens.data(), targets.data(), B);
  model.backward();
  Vec params(model.params(), model.params() + model.num_params());
  const Vec grads(model.grads(), model.grads() + model.num_params());
  auto loss = [&] {
    std::copy(params.begin(), params.end(), model.params());
    return model.forward(tokens.data(), targets.data(), B);
  };
  // Check every tensor, a few elements each, so no parameter kind escapes.
  for (const TensorInfo& t : model.param_layout().tensors()) {
    Vec x(params.begin() + t.offset, params.begin() + t.offset + t.numel);
    const Vec g(grads.begin() + t.offset, grads.begin() + t.offset + t.numel);
    auto tensor_loss = [&] {
      std::copy(x.begin(), x.end(), params.begin() + t.offset);
      return loss();
    };
    expect_gradient_matches(x, g, tensor_loss, t.name.c_str(), 12);
    std::copy(x.begin(), x.end(), params.begin() + t.offset);
  }
}

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

std::string config_name(const ModelConfig& m) {
  if (!m.layers.empty()) return "Hybrid_GQA_MLA_ParallelWindow";
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
                      pythia(), hybrid()),
    [](const ::testing::TestParamInfo<ModelConfig>& i) { return config_name(i.param); });

}  // namespace
}  // namespace ellm
