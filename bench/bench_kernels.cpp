// Kernel micro-benchmarks (Google Benchmark): the sgemm limit, tiled vs naive attention, and the
// vectorised exp against libm.   build/bench/bench_kernels --benchmark_filter=Attention
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "kernels/gemm.hpp"
#include "kernels/vmath.hpp"
#include "layers/attention.hpp"
#include "util/rng.hpp"

using namespace ellm;

namespace {
std::vector<float> random_vector(std::size_t n, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = float(rng.normal());
  return v;
}
}  // namespace

static void BM_Sgemm(benchmark::State& state) {
  const int n = int(state.range(0));
  const auto a = random_vector(std::size_t(n) * n, 1), b = random_vector(std::size_t(n) * n, 2);
  std::vector<float> c(std::size_t(n) * n);
  for (auto _ : state) {
    kernels::gemm<float>(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * n * n * double(n), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Sgemm)->Arg(512)->Arg(1024)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();

// Forward + backward of causal MHA, B=1, 6 heads of 64 (d_model 384), sequence length T.
template <bool Naive>
static void BM_Attention(benchmark::State& state) {
  const layers::AttentionShape s{1, int(state.range(0)), 6, 6, 64, 64};
  const auto qkv = random_vector(std::size_t(s.T) * s.row(), 3);
  const auto dout = random_vector(std::size_t(s.T) * s.out_row(), 4);
  std::vector<float> out(dout.size()), lse(std::size_t(s.H) * s.T), dqkv(qkv.size());
  for (auto _ : state) {
    if constexpr (Naive) {
      layers::attention_forward_naive(out.data(), qkv.data(), s);
      layers::attention_backward_naive(dqkv.data(), dout.data(), qkv.data(), s);
    } else {
      layers::attention_forward(out.data(), lse.data(), qkv.data(), s);
      layers::attention_backward(dqkv.data(), dout.data(), out.data(), lse.data(), qkv.data(), s);
    }
    benchmark::DoNotOptimize(dqkv.data());
  }
  state.counters["tokens/s"] = benchmark::Counter(s.T, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Attention<false>)->Name("BM_AttentionTiled")->Arg(256)->Arg(1024)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Attention<true>)->Name("BM_AttentionNaive")->Arg(256)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();

template <bool Fast>
static void BM_Exp(benchmark::State& state) {
  auto x = random_vector(1 << 16, 5);
  std::vector<float> y(x.size());
  for (auto _ : state) {
    for (std::size_t i = 0; i < x.size(); i++) y[i] = Fast ? kernels::exp_fast(x[i]) : std::exp(x[i]);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["elements/s"] = benchmark::Counter(double(x.size()), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Exp<true>)->Name("BM_ExpFast");
BENCHMARK(BM_Exp<false>)->Name("BM_ExpLibm");

BENCHMARK_MAIN();
