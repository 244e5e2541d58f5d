// The measured sweep of the scaling predictor (docs/SCALING.md): all-reduce, reduce-scatter,
// all-gather and all-to-all through mpi::Comm, as the trainer calls them, over message sizes
// (n: one call's whole buffer, src/predict/alpha_beta.hpp). Per size: warm-up, a barrier outside
// the timed region, the median over 5 batches of the slowest rank's mean. Writes the sweep JSON that
// `efficientllm predict fit` reads.
//   mpirun -np 2 build/bench/bench_collectives --out sweep.json [--min-kib 4 --max-kib 16384 --factor 4 --repeat 1]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mpi/comm.hpp"

using ellm::mpi::Comm;

namespace {

// The median of 5 batches' means, each the slowest rank's: robust to the load spikes of a shared
// machine.
double slowest_mean(Comm& comm, int iters, const std::function<void()>& call) {
  for (int i = 0; i < 2; i++) call();  // warm-up
  std::vector<double> batches;
  for (int b = 0; b < 5; b++) {
    comm.barrier();
    const double t0 = ellm::mpi::wtime();
    for (int i = 0; i < iters; i++) call();
    batches.push_back(comm.allreduce_max((ellm::mpi::wtime() - t0) / iters));
  }
  std::nth_element(batches.begin(), batches.begin() + 2, batches.end());
  return batches[2];
}

double load_average() {
  std::ifstream in("/proc/loadavg");
  double l = 0;
  in >> l;
  return l;
}

}  // namespace

int main(int argc, char** argv) {
  ellm::mpi::Session session(&argc, &argv);
  Comm comm = Comm::world();
  std::string out;
  double min_kib = 4, max_kib = 16384, repeat = 1, factor = 4;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--out")) out = argv[i + 1];
    else if (!std::strcmp(argv[i], "--min-kib")) min_kib = std::atof(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--max-kib")) max_kib = std::atof(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--repeat")) repeat = std::atof(argv[i + 1]);  // scales the iterations
    else if (!std::strcmp(argv[i], "--factor")) factor = std::max(1.1, std::atof(argv[i + 1]));  // between sizes
  }
  const int p = comm.size();
  std::vector<float> buf(std::size_t(max_kib * 256) + p, 1.0f), other(buf.size());
  nlohmann::json samples = nlohmann::json::array();
  for (double kib = min_kib; kib <= max_kib * 1.0001; kib *= factor) {
    const std::size_t part = std::max<std::size_t>(1, std::size_t(kib * 256) / p), n = part * p;
    std::vector<int> offsets, rows(p, int(part));
    for (int r = 0; r <= p; r++) offsets.push_back(int(part) * r);
    const int iters = std::max(1, int(repeat * std::min(40.0, 4096 / kib)));
    const std::pair<const char*, std::function<void()>> calls[] = {
        {"all_reduce", [&] { comm.allreduce_sum(buf.data(), n, n * sizeof(float)); }},
        {"reduce_scatter", [&] { comm.reduce_scatter_sum(buf.data(), offsets, other.data()); }},
        {"all_gather", [&] { comm.allgather_in_place(buf.data(), offsets); }},
        {"all_to_all", [&] { comm.alltoallv_rows(buf.data(), rows, other.data(), rows, 1); }},
    };
    for (const auto& [name, call] : calls) {
      std::fill(buf.begin(), buf.end(), 1.0f);  // sums stay finite
      const double s = slowest_mean(comm, iters, call);
      samples.push_back({{"collective", name}, {"bytes", n * sizeof(float)}, {"seconds", s}});
      if (comm.is_root()) std::printf("%-15s %12zu B %12.1f us\n", name, n * sizeof(float), s * 1e6);
    }
  }
  if (comm.is_root() && !out.empty()) {
    const nlohmann::json j = {{"mpi", ellm::mpi::library_version()}, {"ranks", p},
                              {"load_average", load_average()}, {"samples", samples}};
    std::ofstream(out) << j.dump(1) << "\n";
  }
  return 0;
}
