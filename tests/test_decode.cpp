// Cached decoding (src/infer/decoder.hpp, docs/ARCHITECTURE.md "Cached decoding"): feeding a
// sequence chunk by chunk through the caches — a prefill then one token at a time, and uneven
// chunks — gives the same next-token distributions as the training forward over the whole
// sequence, for every token mixer (GQA/MHA/MQA with each position encoding and a sliding window
// shorter than a chunk, MLA, NSA, Mamba, RWKV-6) and channel mixer (dense, RWKV's, a mixture of
// experts with a shared expert), both wirings.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "infer/decoder.hpp"
#include "model/gpt.hpp"
#include "util/rng.hpp"

namespace ellm {
namespace {

constexpr int kBatch = 2;

ModelConfig tiny(Positions pos) {
  ModelConfig m;
  m.vocab_size = 13;
  m.n_layers = 2;
  m.d_model = 8;
  m.n_heads = 2;
  m.d_ff = 12;
  m.seq_len = 12;
  m.norm = Norm::RMSNorm;
  m.positions = pos;
  return m;
}
ModelConfig gqa(Positions pos, int heads, int kv_heads, int window) {
  ModelConfig m = tiny(pos);
  m.n_heads = heads;
  m.n_kv_heads = kv_heads;
  m.window = window;
  return m;
}
ModelConfig mla(int q_latent) {
  ModelConfig m = tiny(Positions::RoPE);
  m.attention = AttentionKind::MLA;
  m.mla_kv_latent = 6;
  m.mla_q_latent = q_latent;
  m.mla_rope_dim = 2;
  m.activation = Activation::SwiGLU;
  return m;
}
ModelConfig pythia() {  // parallel wiring, partial rotary, LayerNorm, untied head, no biases
  ModelConfig m = tiny(Positions::RoPE);
  m.wiring = Wiring::Parallel;
  m.norm = Norm::LayerNorm;
  m.rotary_pct = 0.5;
  m.tie_embeddings = false;
  m.bias = Bias::None;
  return m;
}
ModelConfig mamba() {  // a Mamba layer (mixer only) under an attention layer
  ModelConfig m = tiny(Positions::None);
  ModelConfig s = m;
  s.token_mixer = TokenMixerKind::Mamba;
  s.mlp = ChannelMixerKind::None;
  s.mamba_d_state = 3;
  s.mamba_d_conv = 3;
  s.mamba_chunk = 5;
  m.layers = {s, s, m};
  m.n_layers = 3;
  return m;
}
ModelConfig rwkv() {  // time mix + channel mix, then a parallel-wired RWKV layer
  ModelConfig m = tiny(Positions::None);
  m.token_mixer = TokenMixerKind::RWKV6;
  m.mlp = ChannelMixerKind::RWKV;
  m.rwkv_head_size = 4;
  m.rwkv_chunk = 5;
  m.rwkv_mix_lora = 2;
  m.rwkv_decay_lora = 3;
  ModelConfig parallel = m;
  parallel.wiring = Wiring::Parallel;
  parallel.norm = Norm::LayerNorm;
  m.norm = Norm::LayerNorm;
  parallel.norm = Norm::LayerNorm;
  m.layers = {m, parallel};
  return m;
}

ModelConfig moe() {  // routed experts (top-2 of 4, renormalised) with a shared expert, then a dense layer
  ModelConfig m = tiny(Positions::RoPE);
  ModelConfig e = m;
  e.mlp = ChannelMixerKind::MoE;
  e.moe_experts = 4;
  e.moe_top_k = 2;
  e.moe_shared_experts = 1;
  e.moe_d_ff = 6;
  e.moe_renormalize = true;
  m.layers = {e, m};
  return m;
}

// Compressed blocks of 4 tokens every 2; n = 4 selection blocks of 2 tokens (block 0 and the two
// local ones forced in, so from t = 6 on one is chosen by score); a window of 3.
ModelConfig nsa(Positions pos, int kv_heads) {
  ModelConfig m = tiny(pos);
  m.attention = AttentionKind::NSA;
  m.n_heads = 4;
  m.n_kv_heads = kv_heads;
  m.d_model = 16;
  m.nsa_block = 4;
  m.nsa_stride = 2;
  m.nsa_select_block = 2;
  m.nsa_select_n = 4;
  m.nsa_window = 3;
  return m;
}

struct Case {
  std::string name;
  ModelConfig cfg;
};

std::vector<int> tokens_for(const ModelConfig& m) {
  std::vector<int> t(std::size_t(kBatch) * m.seq_len);
  Rng rng(7);
  for (int& x : t) x = int(rng.below(std::uint64_t(m.vocab_size)));
  return t;
}

// The whole-sequence forward's log-probabilities (B,T,V), from a model whose every parameter is
// its init plus 0.05·N(0,1) (so RWKV's zero-initialised mixes are active); params is the result.
template <class T>
std::vector<double> reference(const ModelConfig& m, const std::vector<int>& tokens, std::vector<T>& params) {
  GPT<T> model(m, kBatch);
  model.init_params(3);
  Rng rng(11);
  for (std::size_t i = 0; i < model.num_params(); i++) model.params()[i] += T(0.05 * rng.normal());
  params.assign(model.params(), model.params() + model.num_params());
  model.forward(tokens.data(), tokens.data(), kBatch);
  const std::size_t n = std::size_t(kBatch) * m.seq_len * m.vocab_size;
  std::vector<double> lp(n);
  for (std::size_t i = 0; i < n; i++) lp[i] = std::log(double(model.probabilities()[i]));
  return lp;
}

// The decoder's log-probabilities (B,T,V) when the sequences are fed in `chunks`.
template <class T>
std::vector<double> decoded(const ModelConfig& m, const std::vector<int>& tokens, const std::vector<T>& params,
                            const std::vector<int>& chunks) {
  Decoder<T> dec(m, kBatch);
  std::copy(params.begin(), params.end(), dec.params());
  const int Tn = m.seq_len, V = m.vocab_size;
  std::vector<double> lp(std::size_t(kBatch) * Tn * V);
  std::vector<int> chunk;
  for (const int c : chunks) {
    const int pos0 = dec.position();
    chunk.clear();
    for (int b = 0; b < kBatch; b++) {
      chunk.insert(chunk.end(), tokens.begin() + b * Tn + pos0, tokens.begin() + b * Tn + pos0 + c);
    }
    const T* logits = dec.forward(chunk.data(), c, true);  // (B,c,V)
    for (int b = 0; b < kBatch; b++) {
      for (int i = 0; i < c; i++) {
        const T* row = logits + (std::size_t(b) * c + i) * V;
        const double top = *std::max_element(row, row + V);
        double sum = 0;
        for (int v = 0; v < V; v++) sum += std::exp(double(row[v]) - top);
        for (int v = 0; v < V; v++) lp[(std::size_t(b) * Tn + pos0 + i) * V + v] = double(row[v]) - top - std::log(sum);
      }
    }
  }
  return lp;
}

// max |a − b| / max |b|: the error relative to the log-probabilities' scale.
double relative_error(const std::vector<double>& a, const std::vector<double>& b) {
  double err = 0, scale = 0;
  for (std::size_t i = 0; i < a.size(); i++) {
    err = std::max(err, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return err / scale;
}

const std::vector<std::vector<int>> kSchedules = {
    {12}, {5, 1, 1, 1, 1, 1, 1, 1}, {3, 1, 4, 2, 2}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}};

class CachedDecoding : public ::testing::TestWithParam<Case> {};

template <class T>
void check(const ModelConfig& m, double tolerance) {
  const std::vector<int> tokens = tokens_for(m);
  std::vector<T> params;
  const std::vector<double> whole = reference<T>(m, tokens, params);
  for (const auto& schedule : kSchedules) {
    ASSERT_EQ(std::accumulate(schedule.begin(), schedule.end(), 0), m.seq_len);
    EXPECT_LT(relative_error(decoded<T>(m, tokens, params, schedule), whole), tolerance)
        << "chunks of " << schedule[0] << ", " << schedule[1] << ", ...";
  }
}

TEST_P(CachedDecoding, EqualsTheWholeSequenceForwardInDouble) { check<double>(GetParam().cfg, 1e-12); }
TEST_P(CachedDecoding, EqualsTheWholeSequenceForwardInFloat) { check<float>(GetParam().cfg, 1e-5); }

INSTANTIATE_TEST_SUITE_P(
    Mixers, CachedDecoding,
    ::testing::Values(Case{"MHA_RoPE", gqa(Positions::RoPE, 2, 2, 0)},
                      Case{"GQA_Learned_Window3", gqa(Positions::Learned, 4, 2, 3)},
                      Case{"MQA_ALiBi_Window4", gqa(Positions::ALiBi, 2, 1, 4)},
                      Case{"MHA_Sinusoidal", gqa(Positions::Sinusoidal, 2, 2, 0)},
                      Case{"Pythia_Parallel_PartialRotary", pythia()},
                      Case{"MLA", mla(0)}, Case{"MLA_QLatent", mla(4)},
                      Case{"Mamba_Hybrid", mamba()}, Case{"RWKV6", rwkv()}, Case{"MoE", moe()},
                      Case{"NSA_RoPE", nsa(Positions::RoPE, 2)}, Case{"NSA_Learned_OneGroup", nsa(Positions::Learned, 1)}),
    [](const auto& info) { return info.param.name; });

// The test can fail: a cache that forgets (the decoder reset between chunks) is caught.
TEST(CachedDecodingCanFail, ALostCacheIsCaught) {
  const ModelConfig m = gqa(Positions::RoPE, 2, 2, 0);
  const std::vector<int> tokens = tokens_for(m);
  std::vector<double> params;
  const std::vector<double> whole = reference<double>(m, tokens, params);
  Decoder<double> dec(m, kBatch);
  std::copy(params.begin(), params.end(), dec.params());
  std::vector<int> first(kBatch * 6), second(kBatch * 6);
  for (int b = 0; b < kBatch; b++) {
    std::copy_n(tokens.begin() + b * 12, 6, first.begin() + b * 6);
    std::copy_n(tokens.begin() + b * 12 + 6, 6, second.begin() + b * 6);
  }
  dec.forward(first.data(), 6, false);
  const double right = dec.forward(second.data(), 6, false)[0];
  dec.reset();  // the second half fed without the first's cache
  const double wrong = dec.forward(second.data(), 6, false)[0];
  EXPECT_GT(std::abs(right - wrong), 1e-6);
}

TEST(CachedDecoding, RefusesTokensPastTheContext) {
  const ModelConfig m = gqa(Positions::RoPE, 2, 2, 0);
  Decoder<float> dec(m, 1);
  std::vector<int> t(13, 1);
  EXPECT_THROW(dec.forward(t.data(), 13, false), std::out_of_range);
}

}  // namespace
}  // namespace ellm
