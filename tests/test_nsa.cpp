// Native sparse attention: the sparse kernel against dense causal attention and finite
// differences; the NSA mixer against finite differences, against a dense reference written from
// the paper's equations, and in the reductions that must hold; its cost; the whole model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "layers/attention.hpp"
#include "layers/sparse_attention.hpp"
#include "model/gpt.hpp"
#include "model/token_mixer.hpp"
#include "support/gradcheck.hpp"

namespace ellm {
namespace {
using layers::KeyRange;
using layers::SparseShape;
using testing::expect_gradient_matches;
using testing::random_doubles;
using testing::weighted_sum;
using Vec = std::vector<double>;

void expect_all_near(const Vec& got, const Vec& want, double tol, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); i++) ASSERT_NEAR(got[i], want[i], tol) << what << "[" << i << "]";
}

// Every tensor of a parameter arena against finite differences of `loss`, which reads `arena`.
void expect_tensor_gradients(const ArenaLayout& layout, Vec& arena, const Vec& grads,
                             const std::function<double()>& loss, std::size_t budget) {
  for (const TensorInfo& t : layout.tensors()) {
    Vec x(arena.begin() + t.offset, arena.begin() + t.offset + t.numel);
    const Vec g(grads.begin() + t.offset, grads.begin() + t.offset + t.numel);
    auto tensor_loss = [&] {
      std::copy(x.begin(), x.end(), arena.begin() + t.offset);
      return loss();
    };
    expect_gradient_matches(x, g, tensor_loss, t.name, t.shape, budget);
    std::copy(x.begin(), x.end(), arena.begin() + t.offset);
  }
}

TEST(SparseAttention, CausalPrefixesEqualCausalAttention) {
  const layers::AttentionShape a{2, 13, 4, 2, 8, 8};
  const SparseShape s{a.B, a.T, a.T, a.H, a.Hkv, a.dk, a.row(), a.row(), a.out_row(), 1};
  std::vector<KeyRange> keys(std::size_t(a.B) * a.T * a.Hkv);  // (B,T,Hkv,1): keys 0 … t
  for (std::size_t i = 0; i < keys.size(); i++) keys[i] = {0, int(i / a.Hkv % a.T) + 1};
  const Vec qkv = random_doubles(std::size_t(a.B) * a.T * a.row(), 31);
  const Vec dout = random_doubles(std::size_t(a.B) * a.T * a.out_row(), 32);
  const std::size_t k_col = std::size_t(a.H) * a.dk, v_col = std::size_t(a.H + a.Hkv) * a.dk;
  Vec out(dout.size()), ref(dout.size()), lse(std::size_t(a.B) * a.H * a.T);
  layers::sparse_attention_forward(out.data(), lse.data(), qkv.data(), qkv.data() + k_col,
                                   qkv.data() + v_col, keys.data(), s);
  layers::attention_forward_naive(ref.data(), qkv.data(), a);
  expect_all_near(out, ref, 1e-12, "out");
  Vec dqkv(qkv.size(), 0.0), dref(qkv.size(), 0.0);
  layers::sparse_attention_backward(dqkv.data(), dqkv.data() + k_col, dqkv.data() + v_col, dout.data(),
                                    out.data(), lse.data(), qkv.data(), qkv.data() + k_col,
                                    qkv.data() + v_col, keys.data(), s);
  layers::attention_backward_naive(dref.data(), dout.data(), qkv.data(), a);
  expect_all_near(dqkv, dref, 1e-12, "dqkv");
}

TEST(SparseAttention, GradCheckOverScatteredRangesWithPaddedRows) {
  // Separate q, k, v with rows wider than their heads, GQA, two ranges per set, some sets empty.
  const SparseShape s{2, 5, 9, 4, 2, 3, 4 * 3 + 1, 2 * 3 + 2, 4 * 3, 2};
  Rng rng(33);
  std::vector<KeyRange> keys(std::size_t(s.B) * s.T * s.Hkv * s.R);
  for (KeyRange& r : keys) {
    r.lo = int(rng.below(s.Tk));
    r.hi = std::min(s.Tk, r.lo + int(rng.below(4)));
  }
  keys[0] = keys[1] = KeyRange{};  // sequence 0, query 0, kv head 0 sees nothing
  Vec q = random_doubles(std::size_t(s.B) * s.T * s.q_row, 34);
  Vec k = random_doubles(std::size_t(s.B) * s.Tk * s.kv_row, 35);
  Vec v = random_doubles(k.size(), 36);
  const Vec w = random_doubles(std::size_t(s.B) * s.T * s.out_row, 37);
  Vec out(w.size()), lse(std::size_t(s.B) * s.H * s.T);
  auto loss = [&] {
    layers::sparse_attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), keys.data(), s);
    return weighted_sum(out, w);
  };
  loss();
  for (int d = 0; d < 2 * s.hs; d++) EXPECT_EQ(out[d], 0.0) << "heads 0 and 1 of a query without keys";
  Vec dq(q.size(), 0.0), dk(k.size(), 0.0), dv(v.size(), 0.0);
  layers::sparse_attention_backward(dq.data(), dk.data(), dv.data(), w.data(), out.data(), lse.data(),
                                    q.data(), k.data(), v.data(), keys.data(), s);
  expect_gradient_matches(q, dq, loss, "dq", {s.B * s.T, s.q_row}, q.size());
  expect_gradient_matches(k, dk, loss, "dk", {s.B * s.Tk, s.kv_row}, k.size());
  expect_gradient_matches(v, dv, loss, "dv", {s.B * s.Tk, s.kv_row}, v.size());
}

// H heads of size hs; the NSA sizes; positions RoPE or none.
ModelConfig nsa_config(int T, int H, int Hkv, int hs, int l, int d, int ls, int n, int w, Positions pos) {
  ModelConfig m;
  m.vocab_size = 11;
  m.n_layers = 2;
  m.n_heads = H;
  m.n_kv_heads = Hkv;
  m.d_model = H * hs;
  m.d_ff = 12;
  m.seq_len = T;
  m.positions = pos;
  m.rope_base = 100.0;
  m.attention = AttentionKind::NSA;
  m.nsa_block = l;
  m.nsa_stride = d;
  m.nsa_select_block = ls;
  m.nsa_select_n = n;
  m.nsa_window = w;
  return m;
}

// One NSA mixer (layer 0, double) on arenas of its own, with random parameters and input. Its
// output projection is the identity (d_model = H·hs), so the rig's output is the heads' y.
struct MixerRig {
  ModelConfig m;
  int B, N;
  ArenaLayout pl, al;
  std::unique_ptr<TokenMixer<double>> mixer;
  Vec params, grads, acts, scratch, x, y;

  MixerRig(const ModelConfig& cfg, int batch) : m(cfg), B(batch), N(batch * cfg.seq_len) {
    mixer = make_nsa_mixer<double>(m, B, Declarer{pl, al, "h.0.attn.", 0}, TensorParallel<double>{});
    params = random_doubles(pl.total(), 41, 0.3);
    const int C = m.d_model;
    std::fill_n(param("out.w"), C * C, 0.0);
    for (int c = 0; c < C; c++) param("out.w")[c * C + c] = 1.0;
    std::fill_n(param("out.b"), C, 0.0);
    grads.assign(pl.total(), 0.0);
    acts.assign(al.total(), 0.0);
    scratch.assign(mixer->scratch_elems(B), 0.0);
    x = random_doubles(std::size_t(N) * C, 42);
    y.assign(std::size_t(N) * C, 0.0);
  }
  Arenas<double> arenas() { return {params.data(), grads.data(), acts.data(), scratch.data()}; }
  const Vec& forward() {
    mixer->forward(arenas(), x.data(), y.data(), B);
    return y;
  }
  Vec backward(const Vec& dy) {
    Vec dx(x.size());
    mixer->backward(arenas(), x.data(), dy.data(), dx.data(), B);
    return dx;
  }
  double* param(const std::string& suffix) {
    for (const TensorInfo& t : pl.tensors()) {
      if (t.name.ends_with("." + suffix)) return params.data() + t.offset;
    }
    throw std::invalid_argument("no tensor " + suffix);
  }
  // Saturated gates (weights 0, bias ±40: σ = 1 or 4e-18) switch branches on and off.
  void force_gates(bool cmp, bool slc, bool win) {
    const int H = m.n_heads;
    std::fill_n(param("gate.w"), 3 * H * m.d_model, 0.0);
    for (int h = 0; h < H; h++) {
      param("gate.b")[h] = cmp ? 40 : -40;
      param("gate.b")[H + h] = slc ? 40 : -40;
      param("gate.b")[2 * H + h] = win ? 40 : -40;
    }
  }
};

// Key and value rows one query attends to.
struct Keys {
  std::vector<const double*> k, v;
  void add(const double* key, const double* value) {
    k.push_back(key);
    v.push_back(value);
  }
};

// Softmax attention of q over the listed rows: the output (hs) and the probabilities.
std::pair<Vec, Vec> attend(const double* q, const Keys& keys, int hs) {
  const std::size_t n = keys.k.size();
  Vec o(hs, 0.0), p(n, 0.0);
  double mx = -1e300, sum = 0;
  for (std::size_t j = 0; j < n; j++) {
    for (int c = 0; c < hs; c++) p[j] += q[c] * keys.k[j][c] / std::sqrt(double(hs));
    mx = std::max(mx, p[j]);
  }
  for (double& pj : p) sum += (pj = std::exp(pj - mx));
  for (std::size_t j = 0; j < n; j++) {
    p[j] /= sum;
    for (int c = 0; c < hs; c++) o[c] += p[j] * keys.v[j][c];
  }
  return {o, p};
}

// The reference's own projection and RoPE, written out rather than calling layers::linear_forward
// and layers::rope_forward, which the mixer itself runs.
// out (N, OC) = x (N, C) · Wᵀ (W is (OC, C)) + b
Vec naive_linear(const double* x, const double* W, const double* b, int N, int C, int OC) {
  Vec out(std::size_t(N) * OC);
  for (int n = 0; n < N; n++) {
    for (int o = 0; o < OC; o++) {
      double acc = b[o];
      for (int c = 0; c < C; c++) acc += x[std::size_t(n) * C + c] * W[std::size_t(o) * C + c];
      out[std::size_t(n) * OC + o] = acc;
    }
  }
  return out;
}
// RoPE (Su et al. 2021, halves layout): in each of the first n_heads heads of a row at position t,
// the pair (v[i], v[i + hs/2]) is the complex number v[i] + i·v[i + hs/2], multiplied by
// e^{i·θ}, θ = t · base^(−2i/hs).
void naive_rope(Vec& x, int B, int T, int row, int n_heads, int hs, double base) {
  for (int b = 0; b < B; b++) {
    for (int t = 0; t < T; t++) {
      for (int head = 0; head < n_heads; head++) {
        double* v = &x[(std::size_t(b) * T + t) * row + std::size_t(head) * hs];
        for (int i = 0; i < hs / 2; i++) {
          const std::complex<double> z = std::complex<double>(v[i], v[i + hs / 2]) *
                                         std::polar(1.0, t * std::pow(base, -2.0 * i / hs));
          v[i] = z.real();
          v[i + hs / 2] = z.imag();
        }
      }
    }
  }
}

// NSA from the paper's equations, query by query, over a rig's parameters and input.
struct NsaReference {
  MixerRig& r;
  const ModelConfig& m = r.m;
  const int T = m.seq_len, H = m.n_heads, G = m.kv_heads(), hs = m.head_dim(), group = H / G;
  const int l = m.nsa_block, d = m.nsa_stride, ls = m.nsa_select_block;
  const int row_a = (H + 2 * G) * hs;  // [q | k_win | v_win]
  const int row_b = 4 * G * hs;        // [k_slc | v_slc | k_cmp | v_cmp]
  Vec qkv = project("qkv", row_a), kv = project("kv", row_b), gate = project("gate", 3 * H);

  explicit NsaReference(MixerRig& rig) : r(rig) {
    if (m.positions != Positions::RoPE) return;
    naive_rope(qkv, r.B, T, row_a, H + G, hs, m.rope_base);
    naive_rope(kv, r.B, T, row_b, G, hs, m.rope_base);
  }
  Vec project(const std::string& name, int width) {
    return naive_linear(r.x.data(), r.param(name + ".w"), r.param(name + ".b"), r.N, m.d_model,
                        width);
  }
  const double* at(const Vec& buf, int width, int b, int t, int col) const {
    return &buf[(std::size_t(b) * T + t) * width + col];
  }

  // φ (e = 0: keys, 1: values) of compressed token i of kv head g in sequence b.
  Vec phi(int e, int b, int i, int g) {
    const std::string name = e == 0 ? "phi_k." : "phi_v.";
    const double *w1 = r.param(name + "w1"), *b1 = r.param(name + "b1"), *w2 = r.param(name + "w2"),
                 *pe = r.param(name + "pe");
    Vec hidden(hs), out(hs, 0.0);
    if (e == 1) std::copy_n(r.param(name + "b2"), hs, out.begin());  // φ_k has no output bias
    for (int o = 0; o < hs; o++) {
      double u = b1[o];
      for (int p = 0; p < l; p++) {
        const double* raw = at(kv, row_b, b, i * d + p, (2 + e) * G * hs + g * hs);
        for (int c = 0; c < hs; c++) u += w1[o * l * hs + p * hs + c] * (raw[c] + pe[p * hs + c]);
      }
      hidden[o] = 0.5 * u * (1 + std::tanh(0.7978845608028654 * (u + 0.044715 * u * u * u)));
    }
    for (int o = 0; o < hs; o++) {
      for (int c = 0; c < hs; c++) out[o] += w2[o * hs + c] * hidden[c];
    }
    return out;
  }

  // Selection blocks of a query at t given its group's cmp probabilities: Eq. 9 scores; block 0
  // and the two local blocks first, then the best scores, ties to the earlier block.
  std::vector<bool> chosen_blocks(int t, const Vec& group_p) const {
    const int blocks = t / ls + 1;
    Vec score(blocks, 0.0);
    for (int j = 0; j < blocks; j++) {
      for (int mi = 0; mi < ls / d; mi++) {
        for (int ni = 0; ni < l / d; ni++) {
          const int c = ls / d * (j + 1) - 1 - mi - ni;
          if (c >= 0 && c < int(group_p.size())) score[j] += group_p[c];
        }
      }
    }
    std::vector<bool> chosen(blocks, false);
    chosen[0] = chosen[blocks - 1] = chosen[std::max(0, blocks - 2)] = true;
    for (int picked = std::min(3, blocks); picked < std::min(m.nsa_select_n, blocks); picked++) {
      int best = -1;
      for (int j = 0; j < blocks; j++) {
        if (!chosen[j] && (best < 0 || score[j] > score[best])) best = j;
      }
      chosen[best] = true;
    }
    return chosen;
  }

  // y (N, H·hs): the three branches of every query of kv group g, gated.
  Vec y() {
    Vec y(r.y.size(), 0.0);
    for (int b = 0; b < r.B; b++) {
      for (int t = 0; t < T; t++) {
        for (int g = 0; g < G; g++) query(y, b, t, g);
      }
    }
    return y;
  }
  void query(Vec& y, int b, int t, int g) {
    std::vector<Vec> cmp;  // compressed keys then values, of the blocks wholly ≤ t
    for (int i = 0; i * d + l - 1 <= t; i++) cmp.push_back(phi(0, b, i, g));
    const std::size_t nc = cmp.size();
    for (std::size_t i = 0; i < nc; i++) cmp.push_back(phi(1, b, int(i), g));
    Keys kcmp, kslc, kwin;
    for (std::size_t i = 0; i < nc; i++) kcmp.add(cmp[i].data(), cmp[nc + i].data());
    std::vector<Vec> o_cmp(H, Vec(hs, 0.0));
    Vec group_p(nc, 0.0);
    for (int h = g * group; h < (g + 1) * group && nc > 0; h++) {
      const auto [o, p] = attend(at(qkv, row_a, b, t, h * hs), kcmp, hs);
      o_cmp[h] = o;
      for (std::size_t i = 0; i < nc; i++) group_p[i] += p[i];
    }
    const std::vector<bool> chosen = chosen_blocks(t, group_p);
    for (int u = 0; u <= t; u++) {
      if (chosen[u / ls]) kslc.add(at(kv, row_b, b, u, g * hs), at(kv, row_b, b, u, (G + g) * hs));
      if (u > t - m.nsa_window) {
        kwin.add(at(qkv, row_a, b, u, (H + g) * hs), at(qkv, row_a, b, u, (H + G + g) * hs));
      }
    }
    const auto sigmoid = [](double z) { return 1 / (1 + std::exp(-z)); };
    for (int h = g * group; h < (g + 1) * group; h++) {
      const double* q = at(qkv, row_a, b, t, h * hs);
      const Vec o_slc = attend(q, kslc, hs).first, o_win = attend(q, kwin, hs).first;
      const double* gl = at(gate, 3 * H, b, t, h);
      double* yr = &y[(std::size_t(b) * T + t) * H * hs + h * hs];
      for (int c = 0; c < hs; c++) {
        yr[c] = sigmoid(gl[0]) * o_cmp[h][c] + sigmoid(gl[H]) * o_slc[c] + sigmoid(gl[2 * H]) * o_win[c];
      }
    }
  }
};

// Causal attention (the dense naive kernel, not the sparse one) over a packed [q | k | v], q from
// the window projection and k, v from the 2·Hkv heads of projection rows starting at kv_w, kv_b.
Vec causal_reference(MixerRig& r, const double* kv_w, const double* kv_b) {
  const ModelConfig& m = r.m;
  const int H = m.n_heads, G = m.kv_heads(), hs = m.head_dim(), C = m.d_model;
  const layers::AttentionShape s{r.B, m.seq_len, H, G, hs, hs};
  Vec w(r.param("qkv.w"), r.param("qkv.w") + std::size_t(H) * hs * C);
  Vec bias(r.param("qkv.b"), r.param("qkv.b") + H * hs);
  w.insert(w.end(), kv_w, kv_w + std::size_t(2) * G * hs * C);
  bias.insert(bias.end(), kv_b, kv_b + 2 * G * hs);
  Vec packed = naive_linear(r.x.data(), w.data(), bias.data(), r.N, C, s.row()), out(r.y.size());
  if (m.positions == Positions::RoPE)
    naive_rope(packed, r.B, m.seq_len, s.row(), H + G, hs, m.rope_base);
  layers::attention_forward_naive(out.data(), packed.data(), s);
  return out;
}

class NsaMixerTest : public ::testing::TestWithParam<ModelConfig> {};

TEST_P(NsaMixerTest, GradientsOfEveryParameterAndTheInput) {
  MixerRig r(GetParam(), 2);
  const Vec w = random_doubles(r.y.size(), 43);
  auto loss = [&] { return weighted_sum(r.forward(), w); };
  loss();
  const Vec dx = r.backward(w);
  expect_gradient_matches(r.x, dx, loss, "dx", {r.N, r.m.d_model}, r.x.size());
  expect_tensor_gradients(r.pl, r.params, r.grads, loss, 2000);
}

TEST_P(NsaMixerTest, ForwardMatchesTheDenseReference) {
  MixerRig r(GetParam(), 2);
  expect_all_near(r.forward(), NsaReference(r).y(), 1e-10, "y");
}

TEST_P(NsaMixerTest, WindowBranchAloneWithWideWindowIsCausalAttention) {
  ModelConfig m = GetParam();
  m.nsa_window = m.seq_len;
  MixerRig r(m, 2);
  r.force_gates(false, false, true);
  const int k_win = m.n_heads * m.head_dim();
  const Vec want = causal_reference(r, r.param("qkv.w") + k_win * m.d_model, r.param("qkv.b") + k_win);
  expect_all_near(r.forward(), want, 1e-12, "y");
}

TEST_P(NsaMixerTest, SelectingEveryBlockIsCausalAttention) {
  ModelConfig m = GetParam();
  m.nsa_select_n = m.seq_len / m.nsa_select_block + 1;
  MixerRig r(m, 2);
  r.force_gates(false, true, false);
  expect_all_near(r.forward(), causal_reference(r, r.param("kv.w"), r.param("kv.b")), 1e-12, "y");
}

// Selection forced blocks only (l' = 4, n = 3) with RoPE and GQA; score-ranked picks with l' < l,
// MQA and a ragged last block; non-overlapping compression (d = l) with l' > l and MHA.
INSTANTIATE_TEST_SUITE_P(
    Shapes, NsaMixerTest,
    ::testing::Values(nsa_config(16, 4, 2, 4, 4, 2, 4, 3, 5, Positions::RoPE),
                      nsa_config(15, 4, 1, 4, 4, 2, 2, 4, 3, Positions::None),
                      nsa_config(24, 2, 2, 8, 2, 2, 4, 4, 6, Positions::RoPE)),
    [](const ::testing::TestParamInfo<ModelConfig>& i) { return "Shape" + std::to_string(i.index); });

TEST(NsaCost, CountsEveryKeyProjectionAndCachedValue) {
  const ModelConfig m = nsa_config(16, 4, 2, 4, 4, 2, 4, 3, 5, Positions::RoPE);
  const int T = m.seq_len, H = m.n_heads, G = m.kv_heads(), hs = m.head_dim(), ls = m.nsa_select_block;
  double keys = 0;  // compressed tokens, raw tokens of the (forced) blocks 0, t/l' − 1, t/l', window
  for (int t = 0; t < T; t++) {
    for (int i = 0; i * m.nsa_stride + m.nsa_block - 1 <= t; i++) keys++;
    for (int u = 0; u <= t; u++) keys += (u / ls == 0 || u / ls >= t / ls - 1) + (u > t - m.nsa_window);
  }
  MixerRig r(m, 1);
  double weights = 0;  // per token: the projections, and φ once per d tokens and kv head
  for (const TensorInfo& t : r.pl.tensors()) {
    if (t.shape.size() == 1 || t.name.ends_with("pe") || t.name.ends_with("out.w")) continue;
    weights += t.name.find("phi") != std::string::npos ? double(t.numel) * G / m.nsa_stride : t.numel;
  }
  const ModuleCost c = nsa_cost(m);
  EXPECT_DOUBLE_EQ(c.other_flops_per_token, 2.0 * H * (hs + hs) * keys / T);
  EXPECT_DOUBLE_EQ(c.matmul_weights, weights);
  EXPECT_DOUBLE_EQ(c.cache_elems_per_token, 2.0 * G * hs * (1 + 1.0 / m.nsa_stride));
}

std::vector<int> random_tokens(std::size_t n, int vocab, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<int> tokens(n);
  for (int& t : tokens) t = int(rng.below(vocab));
  return tokens;
}

TEST(NsaModel, WholeModelGradientsMatchFiniteDifferences) {
  const ModelConfig cfg = nsa_config(16, 4, 2, 4, 4, 2, 4, 3, 5, Positions::RoPE);
  const int B = 2;
  const std::vector<int> tokens = random_tokens(B * cfg.seq_len, cfg.vocab_size, 44),
                         targets = random_tokens(B * cfg.seq_len, cfg.vocab_size, 45);
  GPT<double> model(cfg, B);
  model.init_params(42);
  Vec params(model.params(), model.params() + model.num_params());
  for (double& p : params) p *= 5.0;  // larger than the training init: every path carries gradient
  auto loss = [&] {
    std::copy(params.begin(), params.end(), model.params());
    return model.forward(tokens.data(), targets.data(), B);
  };
  model.zero_grad();
  loss();
  model.backward();
  const Vec grads(model.grads(), model.grads() + model.num_params());
  expect_tensor_gradients(model.param_layout(), params, grads, loss, 12);

  GPT<float> single(cfg, B);  // the float instantiation computes the same loss
  std::copy(params.begin(), params.end(), single.params());
  EXPECT_NEAR(single.forward(tokens.data(), targets.data(), B), loss(), 1e-4);
}

}  // namespace
}  // namespace ellm
