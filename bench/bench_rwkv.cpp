// Forward + backward of one layer's token mixer, RWKV-6's time mix against GQA, at T = 256, 1024
// and 4096 on 1 and 2 kernel threads (the rank's pool), isolated from the rest of the block:
//   build/bench/bench_rwkv [--benchmark_filter=RWKV6]
// Shapes: d_model 256, batch 1; RWKV-6 with 4 heads of 64, chunks of 32, low ranks 32 and 64
// (the reference's); GQA with 4 heads of 64 and 2 kv heads, RoPE. Each mixer starts from its
// declared initialisation. Arguments: T, threads.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "kernels/gemm.hpp"
#include "layers/wkv6.hpp"
#include "model/token_mixer.hpp"
#include "util/rng.hpp"

using namespace ellm;

namespace {

ModelConfig mixer_config(const std::string& name, int T) {
  ModelConfig m;
  m.n_layers = 1;
  m.d_model = 256;
  m.n_heads = 4;
  m.n_kv_heads = 2;
  m.seq_len = T;
  m.positions = Positions::RoPE;
  if (name == "RWKV6") m.token_mixer = TokenMixerKind::RWKV6;
  return m;
}

void BM_TokenMixer(benchmark::State& state, const std::string& name) {
  const ModelConfig m = mixer_config(name, int(state.range(0)));
  kernels::set_kernel_threads(int(state.range(1)));
  ArenaLayout params_layout, acts_layout;
  const std::unique_ptr<TokenMixer<float>> mixer =
      make_token_mixer<float>(m, 1, Declarer{params_layout, acts_layout, "h.0.attn.", 0}, {});
  std::vector<float> params(params_layout.total()), grads(params.size()),
      acts(acts_layout.total()), scratch(mixer->scratch_elems(1));
  init_tensors(params_layout, params.data(), 1);
  Rng rng(1);
  const std::size_t N = m.seq_len, C = m.d_model;
  std::vector<float> x(N * C), y(N * C), dy(y.size()), dx(x.size());
  for (float& v : x) v = float(rng.normal());
  for (float& v : dy) v = float(rng.normal());
  const Arenas<float> a{params.data(), grads.data(), acts.data(), scratch.data()};
  for (auto _ : state) {
    mixer->forward(a, x.data(), y.data(), 1);
    mixer->backward(a, x.data(), dy.data(), dx.data(), 1);
    benchmark::DoNotOptimize(dx.data());
  }
  const ModuleCost cost = token_mixer_cost(m);
  state.counters["tokens/s"] = benchmark::Counter(double(N), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["state B/seq"] = cost.state_elems_per_sequence * 4;
  state.counters["KV B/token"] = cost.cache_elems_per_token * 4;
  kernels::set_kernel_threads(1);
}

// The WKV kernel alone (chunked forward + backward), 4 heads of 64, decays d ~ −3 ± 1.
void BM_Wkv6(benchmark::State& state) {
  const layers::Wkv6Shape s{1, int(state.range(0)), 4, 64, int(state.range(1))};
  const std::size_t n = std::size_t(s.T) * s.H * s.hs;
  Rng rng(2);
  std::vector<float> r(n), k(n), v(n), d(n), u(std::size_t(s.H) * s.hs), dy(n), y(n), dr(n), dk(n), dv(n), dd(n),
      du(u.size()), states(std::size_t(s.H) * s.chunks() * s.hs * s.hs);
  for (auto* t : {&r, &k, &v, &u, &dy})
    for (float& x : *t) x = float(rng.normal());
  for (float& x : d) x = float(-3.0 + rng.normal());
  for (auto _ : state) {
    layers::wkv6_forward(y.data(), states.data(), r.data(), k.data(), v.data(), d.data(), u.data(), s);
    layers::wkv6_backward(dr.data(), dk.data(), dv.data(), dd.data(), du.data(), dy.data(), r.data(), k.data(),
                          v.data(), d.data(), u.data(), states.data(), s);
    benchmark::DoNotOptimize(dd.data());
  }
  state.counters["tokens/s"] = benchmark::Counter(double(s.T), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Wkv6)->ArgsProduct({{1024}, {8, 16, 32, 64}})->ArgNames({"T", "chunk"})->Unit(benchmark::kMillisecond);

void shapes(benchmark::internal::Benchmark* b) {
  for (const int threads : {1, 2})
    for (const int T : {256, 1024, 4096}) b->Args({T, threads});
  b->ArgNames({"T", "threads"})->Unit(benchmark::kMillisecond)->UseRealTime();
}

}  // namespace

BENCHMARK_CAPTURE(BM_TokenMixer, GQA, std::string("GQA"))->Apply(shapes);
BENCHMARK_CAPTURE(BM_TokenMixer, RWKV6, std::string("RWKV6"))->Apply(shapes);

BENCHMARK_MAIN();
