// Token mixers side by side: forward + backward of one layer's mixer, tokens/s, at T = 256, 1024
// and 4096 on 1 and 2 threads (the rank's pool: the GEMMs and the attention kernel split over
// it, the scan runs on one), plus the selective scan alone with the memory bandwidth it achieves, next
// to a plain streaming read measured in the same binary:
//   build/bench/bench_token_mixers [--benchmark_filter=Mamba]
// Shapes: d_model 256, batch 1; GQA with 8 heads and 2 kv heads (as bench_attention), Mamba with
// expand 2, d_state 16, d_conv 4, chunk 64. A new mixer is one more row of kMixers.
#include <benchmark/benchmark.h>

#include <functional>
#include <string>
#include <vector>

#include "kernels/gemm.hpp"
#include "layers/ssm.hpp"
#include "model/token_mixer.hpp"
#include "util/rng.hpp"

using namespace ellm;

namespace {

ModelConfig base(int T) {
  ModelConfig m;
  m.n_layers = 1;
  m.d_model = 256;
  m.n_heads = 8;
  m.n_kv_heads = 2;
  m.seq_len = T;
  m.positions = Positions::RoPE;
  return m;
}

struct MixerRow {
  const char* name;
  std::function<ModelConfig(int T)> config;
};
const std::vector<MixerRow> kMixers = {
    {"GQA", base},
    {"Mamba",
     [](int T) {
       ModelConfig m = base(T);
       m.token_mixer = TokenMixerKind::Mamba;
       return m;
     }},
};

std::vector<float> random_floats(std::size_t n, std::uint64_t seed, double scale = 1.0) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = float(rng.normal() * scale);
  return v;
}

// args: T, threads
void BM_Mixer(benchmark::State& state, const MixerRow& row) {
  const ModelConfig m = row.config(int(state.range(0)));
  kernels::set_kernel_threads(int(state.range(1)));
  ArenaLayout params_layout, acts_layout;
  const std::unique_ptr<TokenMixer<float>> mixer =
      make_token_mixer<float>(m, 1, Declarer{params_layout, acts_layout, "h.0.attn.", 0}, {});
  std::vector<float> params(params_layout.total()), grads(params.size()),
      acts(acts_layout.total()), scratch(mixer->scratch_elems(1));
  init_tensors(params_layout, params.data(), 1);
  const std::size_t N = m.seq_len, C = m.d_model;
  const std::vector<float> x = random_floats(N * C, 2), dy = random_floats(N * C, 3);
  std::vector<float> y(N * C), dx(N * C);
  const Arenas<float> a{params.data(), grads.data(), acts.data(), scratch.data()};
  for (auto _ : state) {
    mixer->forward(a, x.data(), y.data(), 1);
    mixer->backward(a, x.data(), dy.data(), dx.data(), 1);
    benchmark::DoNotOptimize(dx.data());
  }
  const ModuleCost cost = token_mixer_cost(m);
  state.counters["tokens/s"] = benchmark::Counter(double(N), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["act MiB"] = double(acts.size()) * 4 / (1 << 20);
  state.counters["KV B/token"] = cost.cache_elems_per_token * 4;
  state.counters["state B/seq"] = cost.state_elems_per_sequence * 4;
}

// The scan alone (d_inner 512, d_state 16, chunk 64), forward + backward. Bytes: what it must
// move at the least — forward reads u, Δ, B, C and writes y; backward reads u, Δ, B, C, dy and
// writes du, dΔ, dB, dC: 4·(8·D + 6·N) bytes per token, plus the checkpoints written and read.
void BM_Scan(benchmark::State& state) {
  const int T = int(state.range(0)), D = 512, N = 16;
  const layers::ScanShape s{1, T, D, N, 2 * N, 64};
  std::vector<float> u = random_floats(std::size_t(T) * D, 1), delta(std::size_t(T) * D),
                     A(std::size_t(D) * N), bc = random_floats(std::size_t(T) * 2 * N, 2),
                     Dskip = random_floats(D, 3), dy = random_floats(std::size_t(T) * D, 4);
  Rng rng(5);
  for (float& v : delta) v = float(0.001 + 0.1 * rng.uniform());
  for (std::size_t i = 0; i < A.size(); i++) A[i] = -float(i % N + 1);
  std::vector<float> y(u.size()), du(u.size()), ddelta(u.size()), dA(A.size()), dD(D),
      dbc(bc.size()), ckpt(s.checkpoint_elems()), work(s.work_elems());
  for (auto _ : state) {
    layers::selective_scan_forward(y.data(), ckpt.data(), u.data(), delta.data(), A.data(),
                                   bc.data(), bc.data() + N, Dskip.data(), s, work.data());
    layers::selective_scan_backward(du.data(), ddelta.data(), dA.data(), dD.data(), dbc.data(),
                                    dbc.data() + N, dy.data(), ckpt.data(), u.data(), delta.data(),
                                    A.data(), bc.data(), bc.data() + N, Dskip.data(), s, work.data());
    benchmark::DoNotOptimize(du.data());
  }
  const double bytes = 4.0 * (double(T) * (8 * D + 6 * N) + 2.0 * s.checkpoint_elems());
  state.counters["tokens/s"] = benchmark::Counter(double(T), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GB/s"] = benchmark::Counter(bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

// A plain streaming read of 256 MiB (a sum over floats): the bandwidth a memory-bound kernel
// could reach on this machine.
void BM_StreamRead(benchmark::State& state) {
  const std::size_t n = std::size_t(64) << 20;
  const std::vector<float> data = random_floats(n, 6);
  for (auto _ : state) {
    float sums[8] = {};
    for (std::size_t i = 0; i < n; i += 8)
      for (int k = 0; k < 8; k++) sums[k] += data[i + k];
    benchmark::DoNotOptimize(sums);
  }
  state.counters["GB/s"] = benchmark::Counter(double(n) * 4 / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

int main(int argc, char** argv) {
  for (const MixerRow& row : kMixers) {
    benchmark::RegisterBenchmark((std::string("BM_Mixer/") + row.name).c_str(), BM_Mixer, row)
        ->ArgsProduct({{256, 1024, 4096}, {1, 2}})
        ->ArgNames({"T", "threads"})
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  benchmark::RegisterBenchmark("BM_Scan", BM_Scan)->Arg(1024)->Arg(4096)->ArgName("T")->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::RegisterBenchmark("BM_StreamRead", BM_StreamRead)->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
