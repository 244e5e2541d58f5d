// Mamba's pieces: the causal depthwise convolution and the selective scan against finite
// differences, the chunked (checkpoint + recompute) scan against the plain sequential one, the
// whole mixer against finite differences, its activation memory against the documented formula
// (docs/ATTENTION_FREE.md), its cost against hand counts, and its config rules.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "layers/conv1d.hpp"
#include "layers/ssm.hpp"
#include "model/token_mixer.hpp"
#include "support/gradcheck.hpp"

namespace ellm {
namespace {
using layers::ScanShape;
using testing::expect_gradient_matches;
using testing::random_doubles;
using testing::weighted_sum;
using Vec = std::vector<double>;

TEST(MambaGradCheck, CausalDepthwiseConvOnHalfOfAWiderRow) {
  const int B = 2, T = 6, D = 3, K = 4, ld = 2 * D;  // x is the left half of (B,T,2D) rows
  Vec x = random_doubles(B * T * ld, 1), w = random_doubles(D * K, 2), b = random_doubles(D, 3);
  const Vec wout = random_doubles(B * T * D, 4);
  Vec out(B * T * D);
  auto loss = [&] {
    layers::conv1d_causal_forward(out.data(), x.data(), ld, w.data(), b.data(), B, T, D, K);
    return weighted_sum(out, wout);
  };
  Vec dx(x.size(), 7.0), dw(w.size(), 0.0), db(D, 0.0);  // dx's right halves must stay 7
  layers::conv1d_causal_backward(dx.data(), ld, dw.data(), db.data(), wout.data(), x.data(), ld,
                                 w.data(), B, T, D, K);
  Vec dx_left(B * T * ld, 0.0);  // the right halves do not feed the convolution
  for (int r = 0; r < B * T; r++) {
    for (int d = 0; d < D; d++) {
      dx_left[r * ld + d] = dx[r * ld + d];
      EXPECT_EQ(dx[r * ld + D + d], 7.0);
    }
  }
  expect_gradient_matches(x, dx_left, loss, "dx", {B * T, ld}, x.size());
  expect_gradient_matches(w, dw, loss, "dw", {D, K});
  expect_gradient_matches(b, db, loss, "dbias", {1, D});
}

// Random scan inputs: Δ > 0 (softplus' range), A < 0, B and C inside wider rows.
struct ScanData {
  ScanShape s;
  Vec u, delta, A, bc, Dskip;
  ScanData(int B, int T, int D, int N, int chunk, std::uint64_t seed)
      : s{B, T, D, N, 2 * N + 3, chunk},
        u(random_doubles(B * T * D, seed)),
        delta(random_doubles(B * T * D, seed + 1)),
        A(random_doubles(D * N, seed + 2)),
        bc(random_doubles(B * T * s.ld_bc, seed + 3)),
        Dskip(random_doubles(D, seed + 4)) {
    for (double& v : delta) v = std::log1p(std::exp(v));
    for (double& v : A) v = -std::exp(0.5 * v);
  }
  const double* Bm() const { return bc.data() + 3; }
  const double* Cm() const { return bc.data() + 3 + s.N; }
};

// What a scan's backward produces.
template <class T>
struct ScanGrads {
  std::vector<T> y, du, ddelta, dA, dD, dbc;
};

template <class T>
std::vector<T> as(const Vec& v) {
  return std::vector<T>(v.begin(), v.end());
}

// The chunked scan (chunk = s.chunk) or the naive one, forward and backward, in precision T.
template <class T>
ScanGrads<T> run_scan(const ScanData& d, const Vec& dy, bool naive) {
  const ScanShape& s = d.s;
  const std::size_t rows = std::size_t(s.B) * s.Tn;
  const auto u = as<T>(d.u), delta = as<T>(d.delta), A = as<T>(d.A), bc = as<T>(d.bc),
             Dskip = as<T>(d.Dskip), g = as<T>(dy);
  ScanGrads<T> r{std::vector<T>(rows * s.D), std::vector<T>(rows * s.D), std::vector<T>(rows * s.D),
                 std::vector<T>(s.D * s.N, T(0)), std::vector<T>(s.D, T(0)),
                 std::vector<T>(bc.size(), T(0))};
  const T *Bm = bc.data() + 3, *Cm = Bm + s.N;
  T *dB = r.dbc.data() + 3, *dC = dB + s.N;
  if (naive) {
    std::vector<T> states(rows * s.D * s.N);
    layers::selective_scan_forward_naive(r.y.data(), states.data(), u.data(), delta.data(), A.data(), Bm, Cm, Dskip.data(), s);
    layers::selective_scan_backward_naive(r.du.data(), r.ddelta.data(), r.dA.data(), r.dD.data(), dB, dC, g.data(), states.data(),
                                          u.data(), delta.data(), A.data(), Bm, Cm, Dskip.data(), s);
  } else {
    std::vector<T> ckpt(s.checkpoint_elems()), work(s.work_elems());
    layers::selective_scan_forward(r.y.data(), ckpt.data(), u.data(), delta.data(), A.data(), Bm, Cm, Dskip.data(), s, work.data());
    layers::selective_scan_backward(r.du.data(), r.ddelta.data(), r.dA.data(), r.dD.data(), dB, dC, g.data(), ckpt.data(), u.data(),
                                    delta.data(), A.data(), Bm, Cm, Dskip.data(), s, work.data());
  }
  return r;
}

TEST(MambaGradCheck, ChunkedSelectiveScan) {
  ScanData d(2, 7, 3, 4, 3, 10);  // chunks of 3, 3, 1
  const Vec w = random_doubles(std::size_t(2) * 7 * 3, 20);
  auto loss = [&] { return weighted_sum(run_scan<double>(d, w, false).y, w); };
  const ScanGrads<double> g = run_scan<double>(d, w, false);
  const int rows = 2 * 7;
  expect_gradient_matches(d.u, g.du, loss, "du", {rows, 3});
  expect_gradient_matches(d.delta, g.ddelta, loss, "ddelta", {rows, 3});
  expect_gradient_matches(d.A, g.dA, loss, "dA", {3, 4});
  expect_gradient_matches(d.Dskip, g.dD, loss, "dD", {1, 3});
  Vec dbc(g.dbc.begin(), g.dbc.end());  // the 3 leading columns of each row are not B or C
  expect_gradient_matches(d.bc, dbc, loss, "dB, dC", {rows, d.s.ld_bc}, d.bc.size());
}

template <class T>
void expect_close(const std::vector<T>& got, const std::vector<T>& want, double tol,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 0;
  for (const T v : want) scale = std::max(scale, std::fabs(double(v)));
  ASSERT_GT(scale, 0) << what << " is all zeros: the comparison would prove nothing";
  for (std::size_t i = 0; i < got.size(); i++)
    ASSERT_NEAR(got[i], want[i], tol * scale) << what << "[" << i << "]";
}

// Chunk sizes that divide T, do not, are 1 (a checkpoint after every token) and T (none).
class ChunkedScan : public ::testing::TestWithParam<int> {};

TEST_P(ChunkedScan, EqualsThePlainSequentialScanInDoubleAndFloat) {
  const int chunk = GetParam();
  ScanData d(3, 12, 5, 16, chunk, 30);
  const Vec dy = random_doubles(std::size_t(3) * 12 * 5, 40);
  const auto expect_same = [&](const auto& got, const auto& want, double tol) {
    expect_close(got.y, want.y, tol, "y");
    expect_close(got.du, want.du, tol, "du");
    expect_close(got.ddelta, want.ddelta, tol, "ddelta");
    expect_close(got.dA, want.dA, tol, "dA");
    expect_close(got.dD, want.dD, tol, "dD");
    expect_close(got.dbc, want.dbc, tol, "dB, dC");
  };
  expect_same(run_scan<double>(d, dy, false), run_scan<double>(d, dy, true), 1e-12);
  // float: the fast path's exp is exp_fast (2 ulp), the reference's libm's
  expect_same(run_scan<float>(d, dy, false), run_scan<float>(d, dy, true), 1e-4);
}
INSTANTIATE_TEST_SUITE_P(Chunks, ChunkedScan, ::testing::Values(1, 4, 5, 7, 12));

ModelConfig tiny_mamba() {
  ModelConfig m;
  m.vocab_size = 11;
  m.n_layers = 2;
  m.d_model = 6;
  m.n_heads = 2;
  m.d_ff = 8;
  m.seq_len = 7;
  m.token_mixer = TokenMixerKind::Mamba;
  m.mamba_d_state = 3;
  m.mamba_expand = 2;
  m.mamba_d_conv = 3;
  m.mamba_chunk = 3;
  return m;  // dt_rank ⌈6/16⌉ = 1
}

// One Mamba mixer (layer 0) on arenas of its own, with random parameters and input.
struct MambaRig {
  ModelConfig m;
  int B, N;
  ArenaLayout pl, al;
  std::unique_ptr<TokenMixer<double>> mixer;
  Vec params, grads, acts, scratch, x, y;

  MambaRig(const ModelConfig& cfg, int batch) : m(cfg), B(batch), N(batch * cfg.seq_len) {
    mixer = make_mamba_mixer<double>(m, B, Declarer{pl, al, "h.0.attn.", 0}, TensorParallel<double>{});
    params = random_doubles(pl.total(), 51, 0.5);
    grads.assign(pl.total(), 0.0);
    acts.assign(al.total(), 0.0);
    scratch.assign(mixer->scratch_elems(B), 0.0);
    x = random_doubles(std::size_t(N) * m.d_model, 52);
    y.assign(std::size_t(N) * m.d_model, 0.0);
  }
  Arenas<double> arenas() { return {params.data(), grads.data(), acts.data(), scratch.data()}; }
  const Vec& forward() {
    mixer->forward(arenas(), x.data(), y.data(), B);
    return y;
  }
};

TEST(MambaGradCheck, WholeMixerEveryParameterAndTheInput) {
  MambaRig r(tiny_mamba(), 2);
  const Vec w = random_doubles(r.y.size(), 53);
  auto loss = [&] { return weighted_sum(r.forward(), w); };
  loss();
  Vec dx(r.x.size());
  r.mixer->backward(r.arenas(), r.x.data(), w.data(), dx.data(), r.B);
  expect_gradient_matches(r.x, dx, loss, "dx", {r.N, r.m.d_model}, r.x.size());
  for (const TensorInfo& t : r.pl.tensors()) {
    Vec p(r.params.begin() + t.offset, r.params.begin() + t.offset + t.numel);
    const Vec g(r.grads.begin() + t.offset, r.grads.begin() + t.offset + t.numel);
    auto tensor_loss = [&] {
      std::copy(p.begin(), p.end(), r.params.begin() + t.offset);
      return loss();
    };
    expect_gradient_matches(p, g, tensor_loss, t.name, t.shape, 2000);
    std::copy(p.begin(), p.end(), r.params.begin() + t.offset);
  }
}

// docs/ATTENTION_FREE.md: a Mamba layer saves B·T·(5·D + R + 2N) + B·(⌈T/c⌉ − 1)·D·N elements
// (D = expand·C / tp inner channels, R = dt_rank, N = d_state, c = the scan's chunk), never the
// (B,T,D,N) state history.
TEST(MambaMemory, ActivationsFollowTheDocumentedFormula) {
  const auto activations = [](int T, int chunk, int N, int tp) {
    ModelConfig m = tiny_mamba();
    m.d_model = 32;
    m.seq_len = T;
    m.mamba_chunk = chunk;
    m.mamba_d_state = N;
    ArenaLayout pl, al;
    TensorParallel<float> parallel;
    parallel.shard = {0, tp};
    make_mamba_mixer<float>(m, 3, Declarer{pl, al, "h.0.attn.", 0}, parallel);
    return al.total();
  };
  for (const auto& [T, chunk, N, tp] : std::vector<std::array<int, 4>>{
           {64, 16, 16, 1}, {64, 64, 16, 1}, {100, 16, 8, 1}, {64, 16, 16, 2}, {64, 1000, 4, 2}}) {
    const int B = 3, D = 64 / tp, R = 2;  // expand 2 · d_model 32; R = ⌈32/16⌉
    const int c = std::min(chunk, T), chunks = (T + c - 1) / c;
    const std::size_t formula =
        std::size_t(B) * T * (5 * D + R + 2 * N) + std::size_t(B) * (chunks - 1) * D * N;
    EXPECT_EQ(activations(T, chunk, N, tp), formula)
        << "T=" << T << " chunk=" << chunk << " N=" << N << " tp=" << tp;
    // One more state element per channel costs 2 per token (B_t, C_t) and D per checkpoint,
    // not the D per token that a stored (B,T,D,N) history would.
    const std::size_t per_state_element = activations(T, chunk, N + 1, tp) - formula;
    EXPECT_EQ(per_state_element, std::size_t(B) * T * 2 + std::size_t(B) * (chunks - 1) * D);
    EXPECT_LT(per_state_element, std::size_t(B) * T * D / 4) << "T=" << T << " chunk=" << chunk;
  }
}

TEST(MambaCost, HandCountsOfWeightsFlopsAndState) {
  ModelConfig m;
  m.d_model = 64;
  m.token_mixer = TokenMixerKind::Mamba;  // expand 2, N 16, K 4, R ⌈64/16⌉ = 4
  const ModuleCost c = token_mixer_cost(m);
  EXPECT_DOUBLE_EQ(c.matmul_weights, 128.0 * 2 * 64 + 128 * (4 + 32) + 4 * 128 + 64 * 128);
  EXPECT_DOUBLE_EQ(c.other_flops_per_token, 128.0 * (2 * 4 + 6 * 16 + 3));
  EXPECT_DOUBLE_EQ(c.cache_elems_per_token, 0);
  EXPECT_DOUBLE_EQ(c.state_elems_per_sequence, 128.0 * 3 + 128 * 16);
  // Every weight of the layout is in a matrix product but the per-channel vectors (conv, dt
  // bias, A_log, D): the count matches the parameters actually declared.
  ArenaLayout pl, al;
  make_mamba_mixer<float>(m, 1, Declarer{pl, al, "", 0}, TensorParallel<float>{});
  double matrices = 0;
  for (const TensorInfo& t : pl.tensors())
    if (t.name.ends_with("proj.w")) matrices += double(t.full_numel);
  EXPECT_DOUBLE_EQ(matrices, c.matmul_weights);
}

// The reference's initialisation: A = −[1..N] in every channel, D = 1, Δ = softplus(dt bias)
// inside [1e-3, 1e-1].
TEST(MambaInit, ALogDAndDtBiasAsTheReference) {
  ModelConfig m = tiny_mamba();
  ArenaLayout pl, al;
  make_mamba_mixer<double>(m, 1, Declarer{pl, al, "", 0}, TensorParallel<double>{});
  Vec params(pl.total());
  init_tensors(pl, params.data(), 5);
  for (const TensorInfo& t : pl.tensors()) {
    const double* p = params.data() + t.offset;
    for (std::size_t i = 0; i < t.numel; i++) {
      if (t.name == "A_log") {
        EXPECT_NEAR(std::exp(p[i]), double(i % m.mamba_d_state + 1), 1e-12);
      }
      if (t.name == "D") {
        EXPECT_EQ(p[i], 1.0);
      }
      if (t.name == "dt_proj.b") {
        const double dt = std::log1p(std::exp(p[i]));
        EXPECT_GE(dt, 1e-3 * (1 - 1e-9));
        EXPECT_LE(dt, 1e-1 * (1 + 1e-9));
      }
    }
    if (t.name == "A_log" || t.name == "dt_proj.b") {
      EXPECT_FALSE(t.decay) << t.name;
    }
  }
}

}  // namespace
}  // namespace ellm
