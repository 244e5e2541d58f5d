// Expert parallelism's token exchange inside a real MoE layer against the raw MPI_Alltoallv of
// the same rows, in one run: each rank holds E/ep experts (ep = the world), routes its own random
// tokens, and runs the layer's forward and backward (four row exchanges: there and back in each);
// the time the ep communicator spent blocked is compared with the same four exchanges done bare.
// OSU style: warm-up, barrier outside the timed region, each rank's best of 5 timed loops. With
// --barrier each exchange inside the layer is preceded by a barrier on another communicator, so
// the ep time is the transfer alone, not the wait for a rank whose experts got more tokens.
//   mpirun -np 2 build/bench/bench_moe_dispatch
#include <algorithm>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "model/channel_mixer.hpp"
#include "mpi/comm.hpp"
#include "train/expert_parallel_comm.hpp"
#include "util/rng.hpp"

using namespace ellm;

namespace {

constexpr int kTrials = 5, kIters = 5, kSeqLen = 128;

ModelConfig layer_config() {  // the paper job's MoE layer (docs/MOE.md)
  ModelConfig m;
  m.d_model = 256;
  m.n_heads = 8;
  m.d_ff = 1024;
  m.seq_len = kSeqLen;
  m.activation = Activation::SwiGLU;
  m.mlp = ChannelMixerKind::MoE;
  m.moe_experts = 8;
  m.moe_top_k = 2;
  m.moe_d_ff = 512;
  return m;
}

// Each rank's fastest of kTrials loops of `body`, per call, and the ep communicator's blocked
// seconds per call in that loop.
template <class F>
std::pair<double, double> best_of(mpi::Comm& world, mpi::Comm& ep, F&& body) {
  for (int i = 0; i < 2; i++) body();  // warm-up
  double best = std::numeric_limits<double>::infinity(), blocked = 0;
  for (int trial = 0; trial < kTrials; trial++) {
    world.barrier();
    const double t0 = mpi::wtime(), b0 = ep.stats().seconds;
    for (int i = 0; i < kIters; i++) body();
    const double t = (mpi::wtime() - t0) / kIters;
    if (t < best) best = t, blocked = (ep.stats().seconds - b0) / kIters;
  }
  return {best, blocked};
}

}  // namespace

int main(int argc, char** argv) {
  mpi::Session session(&argc, &argv);
  mpi::Comm world = mpi::Comm::world();
  mpi::Comm ep = world.split(0, world.rank());
  const bool barrier = argc > 1 && std::string(argv[1]) == "--barrier";
  ExpertParallel<float> exchanges = expert_parallel(ep);
  if (barrier) {
    exchanges.exchange_rows = [&world, rows = exchanges.exchange_rows](auto... args) {
      world.barrier();
      rows(args...);
    };
    exchanges.exchange_counts = [&world, counts = exchanges.exchange_counts](auto... args) {
      world.barrier();
      counts(args...);
    };
  }
  const ModelConfig m = layer_config();
  const int n = ep.size(), C = m.d_model, E = m.moe_experts, El = E / n;
  if (world.is_root()) {
    std::printf("# %s, ep = %d; MoE layer C %d, E %d, top-%d, d_ff %d (SwiGLU)%s\n",
                mpi::library_version().c_str(), n, C, E, m.moe_top_k, m.moe_d_ff,
                barrier ? "; a barrier before each exchange (a2a: the transfer alone)" : "");
    std::printf("%8s %12s %12s %12s %12s %12s %12s %8s\n", "tokens", "MiB out", "layer ms",
                "a2a ms", "a2a GB/s", "raw ms", "raw GB/s", "ratio");
  }
  for (int B : {4, 16, 64}) {  // sequences per rank
    const int N = B * kSeqLen;
    ArenaLayout params, acts;
    const auto moe = make_moe<float>(m, B, Declarer{params, acts, "moe.", 0}, {}, exchanges);
    std::vector<float> p(params.total()), g(p.size()), a(acts.total()), s(moe->scratch_elems(B));
    init_tensors(params, p.data(), 1);
    Rng rng(100 + world.rank());
    std::vector<float> x(std::size_t(N) * C), dout(x.size()), out(x.size()), dx(x.size());
    for (float& v : x) v = float(rng.normal());
    for (float& v : dout) v = float(rng.normal());
    const Arenas<float> arenas{p.data(), g.data(), a.data(), s.data()};
    const auto layer = [&] {
      moe->forward(arenas, x.data(), out.data(), B);
      moe->backward(arenas, x.data(), dout.data(), dx.data(), B);
    };
    const auto [layer_s, a2a_s] = best_of(world, ep, layer);
    // The same rows bare: this rank's counts per destination, there and back, twice.
    const std::vector<double>& routed = moe->routing()->expert_tokens;
    std::vector<int> send_rows(n, 0), recv_rows(n, 0);
    for (int e = 0; e < E; e++) send_rows[e / El] += int(routed[e]);
    ep.alltoall(send_rows.data(), recv_rows.data(), 1);
    std::vector<float> send(std::size_t(N) * m.moe_top_k * C), recv(std::size_t(N) * m.moe_top_k * C * n);
    const auto bare = [&] {
      for (int i = 0; i < 2; i++) {
        ep.alltoallv_rows(send.data(), send_rows, recv.data(), recv_rows, C);
        ep.alltoallv_rows(recv.data(), recv_rows, send.data(), send_rows, C);
      }
    };
    const double raw_s = best_of(world, ep, bare).first;
    double out_rows = 0;  // rows leaving this rank per exchange
    for (int r = 0; r < n; r++) out_rows += r == ep.rank() ? 0 : send_rows[r] + recv_rows[r];
    const double bytes = 2 * out_rows * C * sizeof(float);  // four exchanges, half of them back
    const double a2a = world.allreduce_max(a2a_s), raw = world.allreduce_max(raw_s),
                 mib = world.allreduce_max(bytes) / (1 << 20), layer_ms = world.allreduce_max(layer_s);
    if (world.is_root()) {
      std::printf("%8d %12.2f %12.2f %12.2f %12.2f %12.2f %12.2f %8.2f\n", N, mib, layer_ms * 1e3,
                  a2a * 1e3, mib * (1 << 20) / a2a / 1e9, raw * 1e3, mib * (1 << 20) / raw / 1e9, raw / a2a);
    }
  }
  return 0;
}
