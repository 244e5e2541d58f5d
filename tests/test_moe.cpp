// The mixture-of-experts channel mixer against a per-token reference written here, its routing
// terms against hand values, skewed routing (an expert with no tokens, capacity drops) and its
// cost and parameter counts. Its gradients are checked in test_gradcheck.cpp (ModelGradCheck).
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "metrics/flops.hpp"
#include "model/channel_mixer.hpp"
#include "model/plan.hpp"
#include "support/gradcheck.hpp"

namespace ellm {
namespace {
using testing::random_doubles;
using Vec = std::vector<double>;

ModelConfig config(int experts, int top_k, double capacity, int shared) {
  ModelConfig m;
  m.n_layers = 2;
  m.d_model = 6;
  m.n_heads = 2;
  m.d_ff = 5;
  m.seq_len = 8;
  m.mlp = ChannelMixerKind::MoE;
  m.moe_experts = experts;
  m.moe_top_k = top_k;
  m.moe_capacity_factor = capacity;
  m.moe_shared_experts = shared;
  m.moe_aux_coeff = 0.01;
  m.moe_z_coeff = 0.001;
  return m;
}

// One MoE mixer (double) on arenas of its own with random parameters and input.
struct Rig {
  ModelConfig m;
  int B = 2, N;
  ArenaLayout pl, al;
  std::unique_ptr<ChannelMixer<double>> moe;
  Vec params, grads, acts, scratch, x, out;
  Rig(const ModelConfig& cfg) : m(cfg), N(B * cfg.seq_len) {
    moe = make_moe<double>(m, B, Declarer{pl, al, "h.0.mlp.", 0});
    params = random_doubles(pl.total(), 5, 0.5);
    grads.assign(pl.total(), 0.0);
    acts.assign(al.total(), 0.0);
    scratch.assign(moe->scratch_elems(B), 0.0);
    x = random_doubles(std::size_t(N) * m.d_model, 6);
    out.assign(x.size(), 0.0);
  }
  Arenas<double> arenas() { return {params.data(), grads.data(), acts.data(), scratch.data()}; }
  double* param(const std::string& name) {
    for (const TensorInfo& t : pl.tensors()) {
      if (t.name == "h.0.mlp." + name) return params.data() + t.offset;
    }
    throw std::invalid_argument(name);
  }
  const TensorInfo& info(const std::string& name) {
    for (const TensorInfo& t : pl.tensors()) {
      if (t.name == "h.0.mlp." + name) return t;
    }
    throw std::invalid_argument(name);
  }
  const Vec& forward() {
    moe->forward(arenas(), x.data(), out.data(), B);
    return out;
  }
};

double gelu(double u) { return 0.5 * u * (1 + std::tanh(0.7978845608028654 * (u + 0.044715 * u * u * u))); }

// Expert e's GELU MLP on one token, from the parameters, by plain loops.
Vec expert_reference(Rig& r, int e, const double* xt) {
  const int C = r.m.d_model, F = r.m.expert_d_ff();
  const double *w1 = r.param("experts.fc.w") + e * F * C, *b1 = r.param("experts.fc.b") + e * F,
               *w2 = r.param("experts.out.w") + e * C * F, *b2 = r.param("experts.out.b") + e * C;
  Vec h(F), y(C);
  for (int f = 0; f < F; f++) {
    double u = b1[f];
    for (int c = 0; c < C; c++) u += w1[f * C + c] * xt[c];
    h[f] = gelu(u);
  }
  for (int c = 0; c < C; c++) {
    y[c] = b2[c];
    for (int f = 0; f < F; f++) y[c] += w2[c * F + f] * h[f];
  }
  return y;
}

// The mixer's output, token by token: softmax router, top-k (ties to the lower index), the first
// ⌈cf·N·k/E⌉ assignments of each expert in token order kept.
Vec reference(Rig& r) {
  const int C = r.m.d_model, E = r.m.moe_experts, k = r.m.moe_top_k, N = r.N;
  const int capacity = r.m.moe_capacity_factor > 0 ? int(std::ceil(r.m.moe_capacity_factor * N * k / E)) : N * k;
  const double* wr = r.param("router.w");
  std::vector<int> taken(E, 0);
  Vec out(std::size_t(N) * C, 0.0);
  for (int n = 0; n < N; n++) {
    const double* xt = r.x.data() + n * C;
    Vec p(E);
    double sum = 0;
    for (int e = 0; e < E; e++) {
      double l = 0;
      for (int c = 0; c < C; c++) l += wr[e * C + c] * xt[c];
      sum += p[e] = std::exp(l);
    }
    for (double& v : p) v /= sum;
    std::vector<bool> used(E, false);
    for (int j = 0; j < k; j++) {
      int best = -1;
      for (int e = 0; e < E; e++) {
        if (!used[e] && (best < 0 || p[e] > p[best])) best = e;
      }
      used[best] = true;
      if (taken[best]++ >= capacity) continue;
      const Vec y = expert_reference(r, best, xt);
      for (int c = 0; c < C; c++) out[n * C + c] += p[best] * y[c];
    }
  }
  return out;
}

TEST(Moe, MatchesThePerTokenReference) {
  for (double capacity : {0.0, 0.6}) {
    Rig r(config(4, 2, capacity, 0));
    const Vec got = r.forward(), want = reference(r);
    for (std::size_t i = 0; i < got.size(); i++) ASSERT_NEAR(got[i], want[i], 1e-12) << i;
    EXPECT_EQ(r.moe->routing()->dropped > 0, capacity > 0);
  }
}

// Router weights 0: every probability is 1/E, ties go to the lowest experts, so experts 0…k−1
// get every token and the others none; the losses take their hand values.
TEST(Moe, UniformRouterHandValuesSkewedLoadAndIdleExperts) {
  Rig r(config(4, 2, 0.0, 0));
  const TensorInfo& router = r.info("router.w");
  std::fill_n(r.params.data() + router.offset, router.numel, 0.0);
  r.forward();
  const RoutingStats& s = *r.moe->routing();
  const std::vector<double> load = {16, 16, 0, 0};
  EXPECT_EQ(s.expert_tokens, load);
  EXPECT_DOUBLE_EQ(s.dropped, 0);
  // coeff · E · Σ f_i P_i = 0.01 · 4 · 2 · (1/2 · 1/4)
  EXPECT_NEAR(s.aux_loss, 0.01, 1e-15);
  EXPECT_NEAR(s.z_loss, 0.001 * std::log(4.0) * std::log(4.0), 1e-15);
  Vec dout = random_doubles(r.out.size(), 7), dx(r.x.size());
  r.moe->backward(r.arenas(), r.x.data(), dout.data(), dx.data(), r.B);
  const TensorInfo& w1 = r.info("experts.fc.w");
  const std::size_t per_expert = w1.numel / 4;
  double idle = 0, busy = 0;
  for (std::size_t i = 0; i < w1.numel; i++) (i < 2 * per_expert ? busy : idle) += std::fabs(r.grads[w1.offset + i]);
  EXPECT_EQ(idle, 0.0) << "experts without tokens get no gradient";
  EXPECT_GT(busy, 0.0);
}

// With capacity factor 1 and all tokens on experts 0 and 1, each takes ⌈N·k/E⌉ = N/2 of its N
// assignments: N are dropped, and those tokens keep only their other expert (or nothing).
TEST(Moe, CapacityDropsTheAssignmentsOverIt) {
  Rig r(config(4, 2, 1.0, 0));
  const TensorInfo& router = r.info("router.w");
  std::fill_n(r.params.data() + router.offset, router.numel, 0.0);
  const Vec got = r.forward(), want = reference(r);
  EXPECT_DOUBLE_EQ(r.moe->routing()->dropped, r.N);
  for (std::size_t i = 0; i < got.size(); i++) ASSERT_NEAR(got[i], want[i], 1e-12) << i;
  const int C = r.m.d_model;
  for (int n = r.N / 2; n < r.N; n++) {  // the last half of the tokens lost both experts
    for (int c = 0; c < C; c++) EXPECT_EQ(got[n * C + c], 0.0);
  }
}

TEST(Moe, CostAndParameterCountsByHand) {
  ModelConfig m = config(8, 2, 0.0, 1);
  m.moe_d_ff = 4;
  const double C = 6, F = 4, E = 8, k = 2;
  EXPECT_DOUBLE_EQ(moe_cost(m).matmul_weights, (k + 1) * 2 * F * C + E * C);  // k routed + 1 shared, router
  ModelConfig dense = m;
  dense.mlp = ChannelMixerKind::Dense;
  const ParamCounts moe = count_params(make_param_layout(m)), base = count_params(make_param_layout(dense));
  const double per_expert = F * C + F + C * F + C, shared = per_expert, router = E * C, mlp = 2 * 5 * C + 5 + C;
  EXPECT_DOUBLE_EQ(moe.total - base.total, 2 * (E * per_expert + shared + router - mlp));
  EXPECT_DOUBLE_EQ(moe.total - moe.active_per_token, 2 * (E - k) * per_expert);
}

}  // namespace
}  // namespace ellm
