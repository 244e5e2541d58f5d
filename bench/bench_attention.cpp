// Forward + backward of one layer's attention mixer per variant (MHA, MQA, GQA, sliding window,
// MLA, NSA) at T = 256, 1024 and 2048, isolated from the rest of the block:
//   build/bench/bench_attention [--benchmark_filter=MLA]
// Shapes follow jobs/paper/attention.json: d_model 256, 8 heads, GQA with 2 kv heads, batch 1.
#include <benchmark/benchmark.h>

#include <vector>

#include "model/token_mixer.hpp"
#include "util/rng.hpp"

using namespace ellm;

namespace {

ModelConfig variant(const std::string& name, int T) {
  ModelConfig m;
  m.n_layers = 1;
  m.d_model = 256;
  m.n_heads = 8;
  m.seq_len = T;
  m.positions = Positions::RoPE;
  m.n_kv_heads = 2;
  if (name == "MHA") m.n_kv_heads = 8;
  if (name == "MQA") m.n_kv_heads = 1;
  if (name == "SWA") m.window = 256;
  if (name == "MLA") {
    m.attention = AttentionKind::MLA;
    m.n_kv_heads = 0;
    m.mla_q_latent = 96;
  }
  if (name == "NSA") {
    m.attention = AttentionKind::NSA;
    m.nsa_block = 16;
    m.nsa_stride = 8;
    m.nsa_select_block = 32;
    m.nsa_select_n = 4;
    m.nsa_window = 64;
  }
  return m;
}

void BM_Mixer(benchmark::State& state, const std::string& name) {
  const ModelConfig m = variant(name, int(state.range(0)));
  ArenaLayout params_layout, acts_layout;
  const std::unique_ptr<TokenMixer<float>> mixer =
      make_token_mixer<float>(m, 1, Declarer{params_layout, acts_layout, "h.0.attn.", 0}, {});
  Rng rng(1);
  std::vector<float> params(params_layout.total()), grads(params.size()),
      acts(acts_layout.total()), scratch(mixer->scratch_elems(1));
  for (float& p : params) p = float(rng.normal() * 0.02);
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
  state.counters["tokens/s"] = benchmark::Counter(double(N), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["KV B/token"] = token_mixer_cost(m).cache_elems_per_token * 4;
}

}  // namespace

BENCHMARK_CAPTURE(BM_Mixer, MHA, std::string("MHA"))->Arg(256)->Arg(1024)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Mixer, MQA, std::string("MQA"))->Arg(256)->Arg(1024)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Mixer, GQA, std::string("GQA"))->Arg(256)->Arg(1024)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Mixer, SWA, std::string("SWA"))->Arg(256)->Arg(1024)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Mixer, MLA, std::string("MLA"))->Arg(256)->Arg(1024)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Mixer, NSA, std::string("NSA"))->Arg(256)->Arg(1024)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
