// RWKV-6: the WKV kernel's backward against finite differences, its chunked form against the
// one-token recurrence (double on ragged chunks; float over 4096 tokens with decays near 0 and
// near 1), the token shift's gradient, and the module costs.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "layers/token_shift.hpp"
#include "layers/wkv6.hpp"
#include "model/block.hpp"
#include "model/plan.hpp"
#include "support/gradcheck.hpp"
#include "util/rng.hpp"

namespace ellm {
namespace {
using testing::expect_gradient_matches;
using testing::random_doubles;
using testing::weighted_sum;
using Vec = std::vector<double>;

// Decays d ~ −2 + 1.5·N(0,1): from almost none (d = −6.5: w ≈ 0.9985) to almost total
// (d = 2.5: w ≈ 5e−6), below the clamp (d > 4.6) with negligible probability.
Vec decays(std::size_t n, std::uint64_t seed) {
  Vec d = random_doubles(n, seed);
  for (double& x : d) x = -2.0 + 1.5 * x;
  return d;
}

TEST(Wkv6, ChunkedBackwardMatchesFiniteDifferencesAcrossRaggedChunks) {
  const layers::Wkv6Shape s{2, 7, 2, 3, 3};  // chunks of 3, 3 and 1 token
  const std::size_t n = std::size_t(s.B) * s.T * s.H * s.hs;
  Vec r = random_doubles(n, 1), k = random_doubles(n, 2), v = random_doubles(n, 3), d = decays(n, 4);
  Vec u = random_doubles(std::size_t(s.H) * s.hs, 5);
  const Vec w = random_doubles(n, 6);
  Vec y(n), states(std::size_t(s.B) * s.H * s.chunks() * s.hs * s.hs);
  auto loss = [&] {
    layers::wkv6_forward(y.data(), states.data(), r.data(), k.data(), v.data(), d.data(), u.data(), s);
    return weighted_sum(y, w);
  };
  loss();
  Vec dr(n), dk(n), dv(n), dd(n), du(u.size(), 0.0);
  layers::wkv6_backward(dr.data(), dk.data(), dv.data(), dd.data(), du.data(), w.data(), r.data(),
                        k.data(), v.data(), d.data(), u.data(), states.data(), s);
  const int rows = s.B * s.T, cols = s.H * s.hs;
  expect_gradient_matches(r, dr, loss, "dr", {rows, cols});
  expect_gradient_matches(k, dk, loss, "dk", {rows, cols});
  expect_gradient_matches(v, dv, loss, "dv", {rows, cols});
  expect_gradient_matches(d, dd, loss, "dd", {rows, cols});
  expect_gradient_matches(u, du, loss, "du", {s.H, s.hs});
}

TEST(Wkv6, ChunkedEqualsRecurrentInDoubleForEveryChunkLength) {
  for (const int chunk : {1, 2, 5, 16}) {
    const layers::Wkv6Shape s{2, 11, 3, 4, chunk};
    const std::size_t n = std::size_t(s.B) * s.T * s.H * s.hs, S = std::size_t(s.B) * s.H * s.hs * s.hs;
    const Vec r = random_doubles(n, 7), k = random_doubles(n, 8), v = random_doubles(n, 9),
              d = decays(n, 10), u = random_doubles(std::size_t(s.H) * s.hs, 11), init = random_doubles(S, 12);
    Vec y(n), states(std::size_t(s.B) * s.H * s.chunks() * s.hs * s.hs), last(S);
    layers::wkv6_forward(y.data(), states.data(), r.data(), k.data(), v.data(), d.data(), u.data(), s,
                         init.data(), last.data());
    Vec y_ref(n), state = init;
    layers::wkv6_recurrent(y_ref.data(), state.data(), r.data(), k.data(), v.data(), d.data(), u.data(), s);
    for (std::size_t i = 0; i < n; i++) ASSERT_NEAR(y[i], y_ref[i], 1e-12 * (1 + std::abs(y_ref[i]))) << "chunk " << chunk << " y[" << i << "]";
    for (std::size_t i = 0; i < S; i++) ASSERT_NEAR(last[i], state[i], 1e-12 * (1 + std::abs(state[i]))) << "chunk " << chunk << " state[" << i << "]";
  }
}

// Float, 4096 tokens, head size 64, chunks of 32: half the channels decay almost not at all
// (d = −12: 1 − w ≈ 6e−6, so the state sums thousands of tokens), a quarter almost totally
// (d ≥ 3: w ≤ e^−20), the rest at random; a few tokens hit the clamp (d = 6: −e^6 < −100).
TEST(Wkv6, ChunkedEqualsRecurrentInFloatOver4096TokensWithExtremeDecays) {
  const layers::Wkv6Shape s{1, 4096, 2, 64, 32};
  const std::size_t C = std::size_t(s.H) * s.hs, n = s.T * C, S = s.H * std::size_t(s.hs) * s.hs;
  Rng rng(13);
  std::vector<float> r(n), k(n), v(n), d(n), u(C);
  for (std::size_t i = 0; i < n; i++) {
    r[i] = float(rng.normal());
    k[i] = float(rng.normal());
    v[i] = float(rng.normal());
    const std::size_t c = i % C;
    d[i] = c % 4 < 2 ? -12.0f : c % 4 == 2 ? float(3.0 + 2.0 * rng.uniform()) : float(-4.0 + 4.0 * rng.uniform());
    if (i % 997 == 0) d[i] = 6.0f;
  }
  for (float& x : u) x = float(rng.normal());
  std::vector<float> y(n), states(S * s.chunks()), last(S), y_ref(n), state(S, 0.0f);
  layers::wkv6_forward(y.data(), states.data(), r.data(), k.data(), v.data(), d.data(), u.data(), s,
                       static_cast<const float*>(nullptr), last.data());
  layers::wkv6_recurrent(y_ref.data(), state.data(), r.data(), k.data(), v.data(), d.data(), u.data(), s);
  double worst_y = 0, worst_state = 0, scale_y = 0, scale_state = 0;
  for (std::size_t i = 0; i < n; i++) {
    ASSERT_TRUE(std::isfinite(y[i])) << "y[" << i << "]";
    worst_y = std::max(worst_y, double(std::abs(y[i] - y_ref[i])));
    scale_y = std::max(scale_y, double(std::abs(y_ref[i])));
  }
  for (std::size_t i = 0; i < S; i++) {
    ASSERT_TRUE(std::isfinite(last[i])) << "state[" << i << "]";
    worst_state = std::max(worst_state, double(std::abs(last[i] - state[i])));
    scale_state = std::max(scale_state, double(std::abs(state[i])));
  }
  EXPECT_GT(scale_state, 50.0);  // a random walk over thousands of tokens: the slow channels kept them
  EXPECT_LT(worst_y / scale_y, 1e-4) << "largest |y| " << scale_y;
  EXPECT_LT(worst_state / scale_state, 1e-4) << "largest |state| " << scale_state;
}

// The float backward runs over the same extreme decays without producing a NaN or an infinity.
TEST(Wkv6, FloatBackwardStaysFiniteWithExtremeDecays) {
  const layers::Wkv6Shape s{1, 256, 1, 16, 32};
  const std::size_t n = std::size_t(s.T) * s.hs;
  Rng rng(17);
  std::vector<float> r(n), k(n), v(n), d(n), u(s.hs, 0.5f), dy(n);
  for (std::size_t i = 0; i < n; i++) {
    r[i] = float(rng.normal());
    k[i] = float(rng.normal());
    v[i] = float(rng.normal());
    dy[i] = float(rng.normal());
    d[i] = i % 3 == 0 ? -15.0f : i % 3 == 1 ? 8.0f : 100.0f;  // 8: clamped; 100: exp overflows float
  }
  std::vector<float> y(n), states(std::size_t(s.chunks()) * s.hs * s.hs), dr(n), dk(n), dv(n), dd(n), du(s.hs);
  layers::wkv6_forward(y.data(), states.data(), r.data(), k.data(), v.data(), d.data(), u.data(), s);
  layers::wkv6_backward(dr.data(), dk.data(), dv.data(), dd.data(), du.data(), dy.data(), r.data(), k.data(),
                        v.data(), d.data(), u.data(), states.data(), s);
  for (std::size_t i = 0; i < n; i++) {
    ASSERT_TRUE(std::isfinite(y[i]) && std::isfinite(dr[i]) && std::isfinite(dk[i]) && std::isfinite(dv[i]) &&
                std::isfinite(dd[i]))
        << "token " << i / s.hs << " channel " << i % s.hs;
  }
}

TEST(GradCheckRwkv, TokenShiftAndLerp) {
  const int B = 2, T = 4, C = 3, N = B * T;
  Vec x = random_doubles(N * C, 20), mu = random_doubles(C, 21), m = random_doubles(N * C, 22);
  const Vec w = random_doubles(N * C, 23);
  Vec xx(N * C), out(N * C);
  auto loss = [&] {
    layers::token_shift_forward(xx.data(), x.data(), B, T, C);
    layers::lerp_forward(out.data(), x.data(), xx.data(), mu.data(), m.data(), N, C);
    return weighted_sum(out, w);
  };
  loss();
  Vec dx(N * C, 0.0), dxx(N * C, 0.0), dmu(C, 0.0), dm(N * C);
  layers::lerp_backward(dx.data(), dxx.data(), dmu.data(), dm.data(), w.data(), xx.data(), mu.data(), m.data(), N, C);
  layers::token_shift_backward(dx.data(), dxx.data(), B, T, C);
  expect_gradient_matches(x, dx, loss, "dx", {N, C});
  expect_gradient_matches(mu, dmu, loss, "dmu", {1, C});
  expect_gradient_matches(m, dm, loss, "dm", {N, C});
}

ModelConfig rwkv_config() {
  ModelConfig m;
  m.d_model = 256;
  m.d_ff = 896;
  m.seq_len = 128;
  m.token_mixer = TokenMixerKind::RWKV6;
  m.mlp = ChannelMixerKind::RWKV;
  return m;
}

// The module's own counts (mixer_rwkv6.cpp, rwkv_channel_mix.cpp), by hand for C = 256, hs = 64,
// D = 32, Dd = 64, d_ff = 896.
TEST(RwkvCost, TimeMixAndChannelMixByHand) {
  const ModuleCost c = block_cost(rwkv_config());
  const double C = 256;
  EXPECT_DOUBLE_EQ(c.matmul_weights, 5 * C * C + 2 * C * 5 * 32 + 2 * C * 64 + 2 * C * 896 + C * C);
  EXPECT_DOUBLE_EQ(c.other_flops_per_token, 4 * C * 64);
  EXPECT_DOUBLE_EQ(c.cache_elems_per_token, 0.0);
  EXPECT_DOUBLE_EQ(c.state_elems_per_sequence, C * 64 + C + C);
}

// The parameter count docs/ATTENTION_FREE.md gives, against the declarations: time mix
// 5C² + 10·C·D + 2·C·Dd + 10·C, channel mix 2·C·F + C² + 2·C, plus the block's two LayerNorms.
TEST(RwkvCost, ParametersAsDocumented) {
  ModelConfig m = rwkv_config();
  m.n_layers = 2;
  m.positions = Positions::None;
  const double C = 256, F = 896, D = 32, Dd = 64, V = 256;
  const double block = (5 * C * C + 10 * C * D + 2 * C * Dd + 10 * C) + (2 * C * F + C * C + 2 * C) + 4 * C;
  EXPECT_DOUBLE_EQ(count_params(make_param_layout(m)).total, V * C + 2 * block + 2 * C);
}

}  // namespace
}  // namespace ellm
