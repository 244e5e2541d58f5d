// Fast kernels against their naive references, on random data (never zeros).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/gemm.hpp"
#include "kernels/vmath.hpp"
#include "layers/attention.hpp"
#include "util/rng.hpp"

namespace ellm {
namespace {

std::vector<float> random_vector(std::size_t n, std::uint64_t seed, double scale = 1.0) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = float(rng.normal() * scale);
  return v;
}

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
                     GemmCase{true, false, 5, 129, 40}, GemmCase{true, true, 48, 48, 48}}) {
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
  int B, T, H, Hkv, hs, tile;
};

void PrintTo(const AttnCase& c, std::ostream* os) {
  *os << "B=" << c.B << " T=" << c.T << " H=" << c.H << " Hkv=" << c.Hkv << " hs=" << c.hs << " tile=" << c.tile;
}

class TiledAttention : public ::testing::TestWithParam<AttnCase> {};

TEST_P(TiledAttention, ForwardAndBackwardMatchNaive) {
  const AttnCase c = GetParam();
  const layers::AttentionShape s{c.B, c.T, c.H, c.Hkv, c.hs};
  const std::size_t n_qkv = std::size_t(c.B) * c.T * s.row(), n_out = std::size_t(c.B) * c.T * s.out_row();
  const auto qkv = random_vector(n_qkv, 21, 0.8);
  const auto dout = random_vector(n_out, 22);

  std::vector<float> out(n_out), lse(std::size_t(c.B) * c.H * c.T), out_ref(n_out);
  layers::attention_forward(out.data(), lse.data(), qkv.data(), s, c.tile);
  layers::attention_forward_naive(out_ref.data(), qkv.data(), s);
  EXPECT_LT(max_abs_diff(out, out_ref), 2e-5);

  std::vector<float> dqkv(n_qkv, 0.0f), dqkv_ref(n_qkv, 0.0f);
  layers::attention_backward(dqkv.data(), dout.data(), out.data(), lse.data(), qkv.data(), s, c.tile);
  layers::attention_backward_naive(dqkv_ref.data(), dout.data(), qkv.data(), s);
  EXPECT_LT(max_abs_diff(dqkv, dqkv_ref), 5e-5);
}

INSTANTIATE_TEST_SUITE_P(Shapes, TiledAttention,
                         ::testing::Values(AttnCase{2, 64, 4, 4, 16, 16},    // MHA, whole tiles
                                           AttnCase{1, 70, 2, 2, 8, 16},     // ragged last tile
                                           AttnCase{2, 33, 4, 2, 8, 64},     // GQA, one tile
                                           AttnCase{1, 50, 4, 1, 12, 8},     // MQA, many tiles
                                           AttnCase{1, 256, 2, 2, 32, 64}),  // default tile
                         [](const ::testing::TestParamInfo<AttnCase>& i) {
                           const AttnCase& c = i.param;
                           return "B" + std::to_string(c.B) + "_T" + std::to_string(c.T) + "_H" +
                                  std::to_string(c.H) + "_KV" + std::to_string(c.Hkv) + "_hs" +
                                  std::to_string(c.hs) + "_tile" + std::to_string(c.tile);
                         });

}  // namespace
}  // namespace ellm
