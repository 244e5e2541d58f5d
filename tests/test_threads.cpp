// The rank's kernels on its thread pool (util/thread_pool.hpp): norms, activations, the linear
// layer's bias, the cross-entropy, AdamW and attention share their independent rows/elements/
// heads among the threads and give bit-identical results for any thread count. The GEMMs run on
// the same pool, one block of C per thread (kernels/gemm.cpp), and OpenBLAS's Haswell kernels
// round a block of C differently from the whole: a whole model's forward and backward is
// bit-identical run to run for a given thread count, and equal within float tolerance across
// thread counts; below the split threshold it is bit-identical on any (docs/PERFORMANCE.md).
#include <gtest/gtest.h>

#include "support/random.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <vector>

#include "layers/activation.hpp"
#include "layers/crossentropy.hpp"
#include "layers/linear.hpp"
#include "layers/norm.hpp"
#include "model/gpt.hpp"
#include "train/optimizer.hpp"
#include "util/rng.hpp"
#include "util/thread_pool.hpp"

using namespace ellm;

namespace {

using ellm::testing::random_vector;

// fn's output on 1 thread equals it on 2 and 3, byte for byte.
void expect_thread_count_invariant(const std::function<std::vector<float>()>& fn, const char* what) {
  rank_pool().set_threads(1);
  const std::vector<float> one = fn();
  for (int threads : {2, 3}) {
    rank_pool().set_threads(threads);
    const std::vector<float> many = fn();
    ASSERT_EQ(one.size(), many.size()) << what;
    EXPECT_EQ(0, std::memcmp(one.data(), many.data(), one.size() * sizeof(float))) << what << ", " << threads << " threads";
  }
  rank_pool().set_threads(1);
}

// Shapes well above the pool's grain (util/thread_pool.hpp): the parallel path runs.
constexpr int N = 300, C = 200, V = 260;

}  // namespace

TEST(RankThreads, NormsAreBitIdenticalOnAnyThreadCount) {
  const auto x = random_vector(std::size_t(N) * C, 1), dy = random_vector(x.size(), 2);
  const auto w = random_vector(C, 3), b = random_vector(C, 4);
  expect_thread_count_invariant([&] {
    std::vector<float> y(x.size()), mean(N), rstd(N), dx = random_vector(x.size(), 5), dw = random_vector(C, 6),
        db = random_vector(C, 7);
    layers::layernorm_forward(y.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C, 1e-5);
    layers::layernorm_backward(dx.data(), dw.data(), db.data(), dy.data(), x.data(), w.data(), mean.data(), rstd.data(), N, C);
    for (auto* v : {&mean, &rstd, &dx, &dw, &db}) y.insert(y.end(), v->begin(), v->end());
    return y;
  }, "layernorm");
  expect_thread_count_invariant([&] {
    std::vector<float> y(x.size()), rstd(N), dx = random_vector(x.size(), 5), dw = random_vector(C, 6);
    layers::rmsnorm_forward(y.data(), rstd.data(), x.data(), w.data(), N, C, 1e-6);
    layers::rmsnorm_backward(dx.data(), dw.data(), dy.data(), x.data(), w.data(), rstd.data(), N, C);
    for (auto* v : {&rstd, &dx, &dw}) y.insert(y.end(), v->begin(), v->end());
    return y;
  }, "rmsnorm");
}

TEST(RankThreads, ActivationsAreBitIdenticalOnAnyThreadCount) {
  const auto x = random_vector(std::size_t(N) * 2 * C, 8), dy = random_vector(x.size(), 9);
  expect_thread_count_invariant([&] {
    std::vector<float> y(x.size()), dx(x.size()), ye(x.size()), dxe(x.size()), ys(std::size_t(N) * C), dxs(x.size());
    layers::gelu_forward(y.data(), x.data(), long(x.size()));
    layers::gelu_backward(dx.data(), x.data(), dy.data(), long(x.size()));
    layers::gelu_exact_forward(ye.data(), x.data(), long(x.size()));
    layers::gelu_exact_backward(dxe.data(), x.data(), dy.data(), long(x.size()));
    layers::swiglu_forward(ys.data(), x.data(), N, C);
    layers::swiglu_backward(dxs.data(), x.data(), dy.data(), N, C);
    for (auto* v : {&dx, &ye, &dxe, &ys, &dxs}) y.insert(y.end(), v->begin(), v->end());
    return y;
  }, "activations");
}

// The linear layer's own elementwise parts: the bias seeding rows forward, the bias gradient's
// column sums backward (its GEMMs run in OpenBLAS, on one thread here).
TEST(RankThreads, LinearBiasIsBitIdenticalOnAnyThreadCount) {
  const auto x = random_vector(std::size_t(N) * C, 20), w = random_vector(std::size_t(V) * C, 21);
  const auto bias = random_vector(V, 22), dy = random_vector(std::size_t(N) * V, 23);
  expect_thread_count_invariant([&] {
    std::vector<float> y(std::size_t(N) * V), db = random_vector(V, 24);
    layers::linear_forward(y.data(), x.data(), w.data(), bias.data(), N, C, V);
    layers::linear_backward(static_cast<float*>(nullptr), static_cast<float*>(nullptr), db.data(), dy.data(),
                            x.data(), w.data(), N, C, V);
    y.insert(y.end(), db.begin(), db.end());
    return y;
  }, "linear bias");
}

TEST(RankThreads, CrossEntropyIsBitIdenticalOnAnyThreadCount) {
  const auto logits = random_vector(std::size_t(N) * V, 10);
  std::vector<int> targets(N);
  for (int n = 0; n < N; n++) targets[n] = n % 7 == 0 ? layers::kIgnoredTarget : (n * 31) % V;
  expect_thread_count_invariant([&] {
    std::vector<float> p = logits, losses(N), rows(3 * N);
    const double total = layers::crossentropy_forward(p.data(), losses.data(), targets.data(), N, V, 0, rows.data());
    layers::crossentropy_backward(p.data(), targets.data(), N, V, 0, 123.0);
    p.insert(p.end(), losses.begin(), losses.end());
    p.push_back(float(total));
    return p;
  }, "cross-entropy");
}

TEST(RankThreads, AdamWIsBitIdenticalOnAnyThreadCount) {
  ArenaLayout layout;
  layout.add(weight("w", {N, C}, Init::normal(0.02)));
  layout.add(weight("b", {C}, Init::zeros()));
  const auto grads = random_vector(layout.total(), 11);
  expect_thread_count_invariant([&] {
    TrainingConfig t;
    AdamW opt(layout, t, {{0, layout.total()}});
    std::vector<float> p = random_vector(layout.total(), 12);
    for (int step = 0; step < 3; step++) opt.step(p.data(), grads.data(), 1e-3, 0.5);
    return p;
  }, "AdamW");
}

TEST(RankThreads, GradientNormAndZeroingAreBitIdenticalOnAnyThreadCount) {
  const auto g = random_vector(300001, 15);  // several 2^16-element chunks and a partial one
  expect_thread_count_invariant([&] { return std::vector<float>{float(global_norm(g.data(), g.size()))}; },
                                "global_norm");
  ModelConfig m;
  m.n_layers = 1;
  m.d_model = 64;
  m.n_heads = 2;
  m.d_ff = 128;
  m.seq_len = 16;
  GPT<float> model(m, 1);
  for (int threads : {1, 2, 3}) {
    rank_pool().set_threads(threads);
    std::fill(model.grads(), model.grads() + model.num_grads(), 1.0f);
    model.zero_grad();
    EXPECT_EQ(std::count(model.grads(), model.grads() + model.num_grads(), 0.0f), std::ptrdiff_t(model.num_grads()))
        << threads << " threads";
  }
  rank_pool().set_threads(1);
}

namespace {
// A small GQA + RoPE + RMSNorm + SwiGLU model of width C (d_ff 3C): its loss and every gradient
// after one forward and backward on B random sequences of 64 tokens.
std::vector<float> model_gradients(int C, int B) {
  ModelConfig m;
  m.n_layers = 2;
  m.d_model = C;
  m.n_heads = 4;
  m.n_kv_heads = 2;
  m.d_ff = 3 * C;
  m.seq_len = 64;
  m.norm = Norm::RMSNorm;
  m.activation = Activation::SwiGLU;
  m.positions = Positions::RoPE;
  Rng rng(13);
  std::vector<int> tokens(std::size_t(B) * m.seq_len), targets(tokens.size());
  for (std::size_t i = 0; i < tokens.size(); i++) tokens[i] = int(rng.below(m.vocab_size)), targets[i] = int(rng.below(m.vocab_size));
  GPT<float> model(m, B);
  model.init_params(14);
  model.zero_grad();
  const double loss = model.forward(tokens.data(), targets.data(), B);
  model.backward();
  std::vector<float> out(model.grads(), model.grads() + model.num_grads());
  out.push_back(float(loss));
  return out;
}
}  // namespace

// Every GEMM below the split threshold (kernels/gemm.cpp; B = 2, C = 64: the largest product, the
// LM head's, is 2 · 128 · 256 · 64 < 2^23 FLOPs): with OpenBLAS out of the picture, the rest of the
// step — every kernel of our own — is bit-identical for any thread count.
TEST(RankThreads, ModelForwardBackwardBelowTheGemmSplitIsBitIdenticalOnAnyPoolSize) {
  expect_thread_count_invariant([] { return model_gradients(64, 2); }, "GPT forward + backward");
}

// Large enough that the MLP's products split over the pool (B = 8, C = 128: 512 rows): the loss
// and every gradient on 1, 2 or 3 threads, each run twice.
TEST(RankThreads, ModelForwardBackwardIsDeterministicPerThreadCountAndCloseAcrossThem) {
  const auto run = [] { return model_gradients(128, 8); };
  rank_pool().set_threads(1);
  const std::vector<float> one = run();
  double largest = 0;
  for (float g : one) largest = std::max(largest, double(std::fabs(g)));
  for (int threads : {1, 2, 3}) {
    rank_pool().set_threads(threads);
    const std::vector<float> first = run(), second = run();
    EXPECT_EQ(0, std::memcmp(first.data(), second.data(), first.size() * sizeof(float))) << threads << " threads";
    ASSERT_EQ(first.size(), one.size());
    double worst = 0;
    for (std::size_t i = 0; i < one.size(); i++) worst = std::max(worst, double(std::fabs(first[i] - one[i])));
    EXPECT_LT(worst, 1e-4 * largest) << threads << " threads against 1";
  }
  rank_pool().set_threads(1);
}
