// Fast kernels against their naive references, and attention also against a reference written
// here from its definition; on random data (never zeros).
#include <gtest/gtest.h>

#include "support/random.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/gemm.hpp"
#include "kernels/vmath.hpp"
#include "layers/attention.hpp"
#include "util/rng.hpp"
#include "util/thread_pool.hpp"

namespace ellm {
namespace {

using ellm::testing::random_vector;

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); i++) m = std::max(m, double(std::fabs(a[i] - b[i])));
  return m;
}

struct GemmCase {
  bool ta, tb;
  int M, N, K;
};

TEST(Gemm, MatchesNaiveForEveryTransposeAndOddShapes) {
  for (GemmCase c : {GemmCase{false, false, 17, 33, 65}, GemmCase{false, true, 64, 31, 7},
                     GemmCase{true, false, 5, 129, 40}, GemmCase{true, true, 48, 48, 48},
                     // one row of C (decoding one token): sgemv, for every transpose
                     GemmCase{false, false, 1, 33, 65}, GemmCase{false, true, 1, 31, 7},
                     GemmCase{true, false, 1, 129, 40}, GemmCase{true, true, 1, 48, 48}}) {
    const int lda = c.ta ? c.M : c.K, ldb = c.tb ? c.K : c.N;
    const auto A = random_vector(std::size_t(c.M) * c.K, 1);
    const auto B = random_vector(std::size_t(c.K) * c.N, 2);
    auto fast = random_vector(std::size_t(c.M) * c.N, 3), naive = fast;  // beta = 0.5 reads C
    kernels::gemm<float>(c.ta, c.tb, c.M, c.N, c.K, 1.5f, A.data(), lda, B.data(), ldb, 0.5f,
                         fast.data(), c.N);
    kernels::gemm_naive<float>(c.ta, c.tb, c.M, c.N, c.K, 1.5f, A.data(), lda, B.data(), ldb, 0.5f,
                               naive.data(), c.N);
    EXPECT_LT(max_abs_diff(fast, naive), 1e-4) << c.ta << c.tb << " " << c.M << "x" << c.N << "x" << c.K;
  }
}

// Products above the split threshold (kernels/gemm.cpp) are cut into one block of C per thread
// of the rank's pool, along C's rows or, when it is wider than tall, its columns; block edges fall
// on odd places too. beta = 1 with a random C catches a block computed twice or not at all.
TEST(Gemm, SplitOverThePoolMatchesNaiveOnOneToThreeThreads) {
  for (GemmCase c : {GemmCase{false, true, 515, 140, 70}, GemmCase{true, false, 130, 517, 69},
                     GemmCase{false, false, 301, 300, 99}, GemmCase{true, true, 97, 333, 140},
                     GemmCase{false, true, 40, 900, 130}, GemmCase{true, false, 520, 150, 70},
                     // one row of C, split by columns (sgemv per block)
                     GemmCase{false, true, 1, 4100, 1030}, GemmCase{true, false, 1, 4100, 1030},
                     GemmCase{false, true, 1, 1100, 1000}}) {  // a GEMV splits from 2^20 FLOPs
    ASSERT_GE(2.0 * c.M * c.N * c.K, c.M == 1 ? double(1 << 20) : double(1 << 23)) << "the case must be large enough to split";
    // Leading dimensions 7 past the minimum: a block that used K, M or N for a stride would fail.
    const int lda = (c.ta ? c.M : c.K) + 7, ldb = (c.tb ? c.K : c.N) + 7, ldc = c.N + 7;
    const auto A = random_vector(std::size_t(c.ta ? c.K : c.M) * lda, 1);
    const auto B = random_vector(std::size_t(c.tb ? c.N : c.K) * ldb, 2);
    const auto C0 = random_vector(std::size_t(c.M) * ldc, 3);
    auto naive = C0;
    kernels::gemm_naive<float>(c.ta, c.tb, c.M, c.N, c.K, 1.5f, A.data(), lda, B.data(), ldb, 1.0f, naive.data(), ldc);
    for (int threads : {1, 2, 3}) {
      kernels::set_kernel_threads(threads);
      auto fast = C0, again = C0;
      kernels::gemm<float>(c.ta, c.tb, c.M, c.N, c.K, 1.5f, A.data(), lda, B.data(), ldb, 1.0f, fast.data(), ldc);
      kernels::gemm<float>(c.ta, c.tb, c.M, c.N, c.K, 1.5f, A.data(), lda, B.data(), ldb, 1.0f, again.data(), ldc);
      double worst = 0;  // relative to the size of the dot products: K terms of |1.5 a b| ~ 1.5 · sqrt(K)
      for (std::size_t i = 0; i < fast.size(); i++) worst = std::max(worst, double(std::fabs(fast[i] - naive[i])));
      EXPECT_LT(worst / (1.5 * std::sqrt(double(c.K))), 1e-5)
          << c.ta << c.tb << " " << c.M << "x" << c.N << "x" << c.K << ", " << threads << " threads";
      EXPECT_EQ(fast, again) << "deterministic for a given thread count: " << threads;
    }
  }
  kernels::set_kernel_threads(1);
}

TEST(Gemm, ThreadsComeFromOpenblasNumThreadsOrAClearError) {
  const char* before = std::getenv("OPENBLAS_NUM_THREADS");
  const std::string saved = before ? before : "";
  ::setenv("OPENBLAS_NUM_THREADS", "3", 1);
  EXPECT_EQ(kernels::default_kernel_threads(), 3);
  EXPECT_EQ(kernels::environment_kernel_threads(), 3);
  for (const char* bad : {"0", "-2", "two", "3x", "99999"}) {
    ::setenv("OPENBLAS_NUM_THREADS", bad, 1);
    try {
      kernels::environment_kernel_threads();
      ADD_FAILURE() << "accepted OPENBLAS_NUM_THREADS=" << bad;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("OPENBLAS_NUM_THREADS"), std::string::npos) << e.what();
    }
  }
  ::unsetenv("OPENBLAS_NUM_THREADS");
  EXPECT_EQ(kernels::environment_kernel_threads(), 0);
  EXPECT_GE(kernels::default_kernel_threads(), 1);  // the process's CPUs
  if (before) ::setenv("OPENBLAS_NUM_THREADS", saved.c_str(), 1);
}

TEST(VMath, ExpFastWithinTwoUlpOfLibm) {
  Rng rng(11);
  for (int i = 0; i < 200000; i++) {
    const float x = float(rng.uniform() * 174.0 - 87.0);
    const double ref = std::exp(double(x));
    EXPECT_NEAR(kernels::exp_fast(x), ref, 2.5 * std::numeric_limits<float>::epsilon() * ref) << x;
  }
}

TEST(VMath, ExpFastSaturatesInsteadOfOverflowing) {
  EXPECT_GT(kernels::exp_fast(1000.0f), 1e38f);
  EXPECT_TRUE(std::isfinite(kernels::exp_fast(1000.0f)));
  EXPECT_LT(kernels::exp_fast(-1000.0f), 1e-37f);
  EXPECT_NEAR(kernels::vtanh(0.3f), std::tanh(0.3f), 1e-6);
  EXPECT_FLOAT_EQ(kernels::vtanh(50.0f), 1.0f);
  EXPECT_FLOAT_EQ(kernels::vtanh(-50.0f), -1.0f);
}

struct AttnCase {
  int B, T, H, Hkv, dk, dv, tile;
  int window = 0;
  bool alibi = false;
};

void PrintTo(const AttnCase& c, std::ostream* os) {
  *os << "B=" << c.B << " T=" << c.T << " H=" << c.H << " Hkv=" << c.Hkv << " dk=" << c.dk
      << " dv=" << c.dv << " tile=" << c.tile << " window=" << c.window << " alibi=" << c.alibi;
}

// Attention written from its definition, sharing nothing with src/layers/attention.cpp (whose
// naive path shares the fast one's head mapping and window start): query head h of H reads kv
// head h·Hkv/H; query t sees key j when j ≤ t and, with a window w > 0, t − j < w; the score is
// q·k/√dk − slope_h·(t − j). Row layout [q: H·dk | k: Hkv·dk | v: Hkv·dv].
std::vector<double> reference_attention(const std::vector<float>& qkv, int B, int T, int H, int Hkv,
                                        int dk, int dv, int window, const double* slopes) {
  const int row = (H + Hkv) * dk + Hkv * dv;
  std::vector<double> out(std::size_t(B) * T * H * dv, 0.0);
  for (int b = 0; b < B; b++) {
    const float* x = qkv.data() + std::size_t(b) * T * row;
    for (int h = 0; h < H; h++) {
      const int g = h * Hkv / H;
      for (int t = 0; t < T; t++) {
        std::vector<double> score;
        std::vector<int> keys;
        for (int j = 0; j <= t; j++) {
          if (window > 0 && t - j >= window) continue;
          double dot = 0;
          for (int c = 0; c < dk; c++)
            dot += double(x[t * row + h * dk + c]) * x[j * row + (H + g) * dk + c];
          score.push_back(dot / std::sqrt(double(dk)) - (slopes ? slopes[h] * (t - j) : 0.0));
          keys.push_back(j);
        }
        const double mx = *std::max_element(score.begin(), score.end());
        double sum = 0;
        for (double& e : score) sum += (e = std::exp(e - mx));
        for (std::size_t n = 0; n < keys.size(); n++) {
          for (int c = 0; c < dv; c++) {
            out[((std::size_t(b) * T + t) * H + h) * dv + c] +=
                score[n] / sum * x[keys[n] * row + (H + Hkv) * dk + g * dv + c];
          }
        }
      }
    }
  }
  return out;
}

template <class A>
double max_abs_diff_ref(const std::vector<A>& a, const std::vector<double>& ref) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); i++) m = std::max(m, std::fabs(double(a[i]) - ref[i]));
  return m;
}

class TiledAttention : public ::testing::TestWithParam<AttnCase> {};

TEST_P(TiledAttention, ForwardAndBackwardMatchNaive) {
  const AttnCase c = GetParam();
  std::vector<double> slopes(c.H);
  layers::alibi_slopes(c.H, slopes.data());
  const layers::AttentionShape s{c.B, c.T, c.H, c.Hkv, c.dk, c.dv, c.window,
                                 c.alibi ? slopes.data() : nullptr};
  const std::size_t n_qkv = std::size_t(c.B) * c.T * s.row(), n_out = std::size_t(c.B) * c.T * s.out_row();
  const auto qkv = random_vector(n_qkv, 21, 0.8);
  const auto dout = random_vector(n_out, 22);

  std::vector<float> out(n_out), lse(std::size_t(c.B) * c.H * c.T), out_ref(n_out);
  layers::attention_forward(out.data(), lse.data(), qkv.data(), s, c.tile);
  layers::attention_forward_naive(out_ref.data(), qkv.data(), s);
  EXPECT_LT(max_abs_diff(out, out_ref), 2e-5);
  const std::vector<double> independent = reference_attention(
      qkv, c.B, c.T, c.H, c.Hkv, c.dk, c.dv, c.window, c.alibi ? slopes.data() : nullptr);
  EXPECT_LT(max_abs_diff_ref(out_ref, independent), 2e-6);  // the naive path's mapping and masks
  EXPECT_LT(max_abs_diff_ref(out, independent), 2e-5);

  std::vector<float> dqkv(n_qkv, 0.0f), dqkv_ref(n_qkv, 0.0f);
  layers::attention_backward(dqkv.data(), dout.data(), out.data(), lse.data(), qkv.data(), s, c.tile);
  layers::attention_backward_naive(dqkv_ref.data(), dout.data(), qkv.data(), s);
  EXPECT_LT(max_abs_diff(dqkv, dqkv_ref), 5e-5);
}

// The rank's threads share out (batch, head) pieces forward and (batch, kv head) pieces backward:
// bit-identical results for any thread count (docs/PERFORMANCE.md states it).
TEST_P(TiledAttention, BitIdenticalOnAnyThreadCount) {
  const AttnCase c = GetParam();
  std::vector<double> slopes(c.H);
  layers::alibi_slopes(c.H, slopes.data());
  const layers::AttentionShape s{c.B, c.T, c.H, c.Hkv, c.dk, c.dv, c.window, c.alibi ? slopes.data() : nullptr};
  const std::size_t n_qkv = std::size_t(c.B) * c.T * s.row(), n_out = std::size_t(c.B) * c.T * s.out_row();
  const auto qkv = random_vector(n_qkv, 31, 0.8);
  const auto dout = random_vector(n_out, 32);
  auto run = [&](int threads) {
    rank_pool().set_threads(threads);
    std::vector<float> out(n_out), lse(std::size_t(c.B) * c.H * c.T), dqkv = random_vector(n_qkv, 33);  // backward adds
    layers::attention_forward(out.data(), lse.data(), qkv.data(), s, c.tile);
    layers::attention_backward(dqkv.data(), dout.data(), out.data(), lse.data(), qkv.data(), s, c.tile);
    rank_pool().set_threads(1);
    out.insert(out.end(), lse.begin(), lse.end());
    out.insert(out.end(), dqkv.begin(), dqkv.end());
    return out;
  };
  const std::vector<float> one = run(1);
  for (int threads : {2, 3}) {
    const std::vector<float> many = run(threads);
    ASSERT_EQ(one.size(), many.size());
    EXPECT_EQ(0, std::memcmp(one.data(), many.data(), one.size() * sizeof(float))) << threads << " threads";
  }
}

// Cached decoding's attention (one query against the cache) against the reference, every position
// of the sequence, and bit-identical on 1, 2 and 3 threads: its heads split over the pool. The
// shapes are large enough for the split (H · keys · (dk + dv) above the pool's grain).
TEST(AttentionDecode, MatchesTheReferenceAtEveryPositionOnAnyThreadCount) {
  for (AttnCase c : {AttnCase{1, 90, 16, 4, 64, 64, 0}, AttnCase{1, 70, 8, 8, 40, 24, 0, 30, true}}) {
    std::vector<double> slopes(c.H);
    layers::alibi_slopes(c.H, slopes.data());
    const double* sl = c.alibi ? slopes.data() : nullptr;
    const layers::AttentionShape s{1, c.T, c.H, c.Hkv, c.dk, c.dv, c.window, sl};
    const int row = s.row();
    const auto qkv = random_vector(std::size_t(c.T) * row, 41, 0.8);
    const auto want = reference_attention(qkv, 1, c.T, c.H, c.Hkv, c.dk, c.dv, c.window, sl);
    // The cache is the k|v part of each qkv row (ld = row, cap = T: no wrap-around).
    const float* cache = qkv.data() + std::size_t(c.H) * c.dk;
    auto decode_all = [&](int threads) {
      rank_pool().set_threads(threads);
      std::vector<float> out(std::size_t(c.T) * c.H * c.dv);
      for (int p = 0; p < c.T; p++)
        layers::attention_decode(out.data() + std::size_t(p) * c.H * c.dv, qkv.data() + std::size_t(p) * row, cache, row,
                                 c.T, c.Hkv * c.dk, p, 1.0f / std::sqrt(float(c.dk)), s);
      rank_pool().set_threads(1);
      return out;
    };
    const std::vector<float> one = decode_all(1);
    for (std::size_t i = 0; i < one.size(); i++)
      ASSERT_NEAR(one[i], want[i], 2e-5 * (1 + std::abs(want[i]))) << "element " << i << " H " << c.H;
    for (int threads : {2, 3}) {
      const std::vector<float> many = decode_all(threads);
      EXPECT_EQ(0, std::memcmp(one.data(), many.data(), one.size() * sizeof(float))) << threads << " threads";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, TiledAttention,
    ::testing::Values(AttnCase{2, 64, 4, 4, 16, 16, 16},                // MHA, whole tiles
                      AttnCase{1, 70, 2, 2, 8, 8, 16},                  // ragged last tile
                      AttnCase{2, 33, 4, 2, 8, 8, 64},                  // GQA, one tile
                      AttnCase{1, 50, 4, 1, 12, 12, 8},                 // MQA, many tiles
                      AttnCase{1, 256, 2, 2, 32, 32, 64},               // default tile
                      AttnCase{1, 45, 3, 3, 12, 8, 8},                  // dk != dv (MLA)
                      AttnCase{2, 70, 4, 2, 8, 8, 16, 20},              // sliding window
                      AttnCase{1, 40, 2, 1, 8, 8, 8, 3},                // window < tile
                      AttnCase{1, 50, 6, 6, 8, 8, 16, 0, true},         // ALiBi, 6 heads
                      AttnCase{1, 50, 4, 2, 8, 8, 16, 24, true}),       // window + ALiBi
    [](const ::testing::TestParamInfo<AttnCase>& i) {
      const AttnCase& c = i.param;
      return "B" + std::to_string(c.B) + "_T" + std::to_string(c.T) + "_H" + std::to_string(c.H) +
             "_KV" + std::to_string(c.Hkv) + "_dk" + std::to_string(c.dk) + "_dv" +
             std::to_string(c.dv) + "_tile" + std::to_string(c.tile) + "_w" +
             std::to_string(c.window) + (c.alibi ? "_alibi" : "");
    });

// GQA's head mapping: with Hkv < H, query head h must read kv head h / (H/Hkv) — the same as
// MHA over kv heads duplicated per group.
TEST(TiledAttention, GqaEqualsMhaWithDuplicatedKvHeads) {
  const int B = 2, T = 37, H = 4, Hkv = 2, hs = 8;
  const layers::AttentionShape gqa{B, T, H, Hkv, hs, hs}, mha{B, T, H, H, hs, hs};
  const auto packed = random_vector(std::size_t(B) * T * gqa.row(), 31);
  std::vector<float> expanded(std::size_t(B) * T * mha.row());
  for (int n = 0; n < B * T; n++) {
    const float* src = packed.data() + std::size_t(n) * gqa.row();
    float* dst = expanded.data() + std::size_t(n) * mha.row();
    std::copy_n(src, H * hs, dst);  // queries
    for (int h = 0; h < H; h++) {
      const int kv = h / (H / Hkv);
      std::copy_n(src + (H + kv) * hs, hs, dst + (H + h) * hs);            // key of head h
      std::copy_n(src + (H + Hkv + kv) * hs, hs, dst + (2 * H + h) * hs);  // value of head h
    }
  }
  std::vector<float> out_gqa(std::size_t(B) * T * H * hs), out_mha(out_gqa.size()), lse(B * H * T);
  layers::attention_forward(out_gqa.data(), lse.data(), packed.data(), gqa, 16);
  layers::attention_forward(out_mha.data(), lse.data(), expanded.data(), mha, 16);
  EXPECT_LT(max_abs_diff(out_gqa, out_mha), 1e-6);
}

// Window sizes from one key to past T, against the reference: w ≥ T is full causal attention
// (the reference without a window), w = 1 sees only the query's own key, so out = its value.
TEST(TiledAttention, WindowSizesAgainstTheReference) {
  const int T = 45, H = 2, Hkv = 1, hs = 8;
  const auto qkv = random_vector(std::size_t(T) * (H + 2 * Hkv) * hs, 32);
  const std::vector<double> causal = reference_attention(qkv, 1, T, H, Hkv, hs, hs, 0, nullptr);
  for (const int window : {1, 3, 16, 17, T - 1, T, T + 20}) {
    const layers::AttentionShape s{1, T, H, Hkv, hs, hs, window};
    std::vector<float> out(std::size_t(T) * H * hs), lse(H * T);
    layers::attention_forward(out.data(), lse.data(), qkv.data(), s, 16);
    const std::vector<double> want =
        reference_attention(qkv, 1, T, H, Hkv, hs, hs, window, nullptr);
    EXPECT_LT(max_abs_diff_ref(out, want), 2e-5) << "window " << window;
    if (window >= T) {
      EXPECT_LT(max_abs_diff_ref(out, causal), 2e-5) << "window " << window;
    } else {
      EXPECT_GT(max_abs_diff_ref(out, causal), 1e-3) << "window " << window << " changed nothing";
    }
    if (window == 1) {
      for (int t = 0; t < T; t++) {
        for (int h = 0; h < H; h++) {
          for (int c = 0; c < hs; c++) {
            ASSERT_NEAR(out[(std::size_t(t) * H + h) * hs + c],
                        qkv[std::size_t(t) * s.row() + (H + Hkv) * hs + c], 1e-6);
          }
        }
      }
    }
  }
}

TEST(Alibi, SlopesFollowThePaper) {
  double s8[8], s6[6];
  layers::alibi_slopes(8, s8);
  EXPECT_DOUBLE_EQ(s8[0], 0.5);  // 2^(-8/8)
  EXPECT_DOUBLE_EQ(s8[7], 1.0 / 256);
  layers::alibi_slopes(6, s6);  // 4 from 2^(-8/4·k), then odd ones of the 8-head sequence
  EXPECT_DOUBLE_EQ(s6[0], 0.25);
  EXPECT_DOUBLE_EQ(s6[3], 1.0 / 256);
  EXPECT_DOUBLE_EQ(s6[4], 0.5);
  EXPECT_DOUBLE_EQ(s6[5], 0.125);
}

}  // namespace
}  // namespace ellm
