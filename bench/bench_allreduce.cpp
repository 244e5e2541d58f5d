// The measured communication limit: MPI_Allreduce bus bandwidth by message size (OSU style:
// warm-up, barrier outside the timed region, min/avg/max across ranks), and the bucketed
// all-reduce of a whole gradient arena as the trainer does it.
//   mpirun -np 2 build/bench/bench_allreduce [--gradient-mib 41.4]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "mpi/comm.hpp"

using ellm::mpi::Comm;

namespace {

// Seconds per all-reduce of n floats in buckets of bucket_bytes, min/avg/max over ranks.
struct Timing {
  double min, avg, max;
};
Timing time_allreduce(Comm& comm, std::vector<float>& buf, std::size_t n, std::size_t bucket_bytes, int iters) {
  for (int i = 0; i < 3; i++) comm.allreduce_sum(buf.data(), n, bucket_bytes);  // warm-up
  comm.barrier();
  const double t0 = ellm::mpi::wtime();
  for (int i = 0; i < iters; i++) comm.allreduce_sum(buf.data(), n, bucket_bytes);
  const double mine = (ellm::mpi::wtime() - t0) / iters;
  return {comm.allreduce_min(mine), comm.allreduce_sum(mine) / comm.size(), comm.allreduce_max(mine)};
}

// nccl-tests convention: busbw = algbw × 2(n−1)/n for all-reduce.
double busbw(std::size_t bytes, double seconds, int ranks) {
  return bytes / seconds * 2.0 * (ranks - 1) / ranks / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  ellm::mpi::Session session(&argc, &argv);
  Comm comm = Comm::world();
  double gradient_mib = 41.4;  // the reference model's 10.84M fp32 parameters
  for (int i = 1; i + 1 < argc; i++) {
    if (std::strcmp(argv[i], "--gradient-mib") == 0) gradient_mib = std::atof(argv[i + 1]);
  }
  const std::size_t max_n = std::size_t(std::max(64.0, gradient_mib) * 1024 * 1024 / 4);
  std::vector<float> buf(max_n, 1.0f);
  if (comm.is_root()) {
    std::printf("# %s, %d ranks\n# single MPI_Allreduce (float, sum)\n", ellm::mpi::library_version().c_str(), comm.size());
    std::printf("%12s %12s %12s %12s %12s\n", "bytes", "min us", "avg us", "max us", "busbw GB/s");
  }
  for (std::size_t bytes = 4096; bytes <= std::size_t(64) << 20; bytes *= 2) {
    const std::size_t n = bytes / 4;
    const int iters = std::max(5, int((std::size_t(256) << 20) / bytes));
    const Timing t = time_allreduce(comm, buf, n, bytes, std::min(iters, 2000));
    if (comm.is_root()) {
      std::printf("%12zu %12.1f %12.1f %12.1f %12.2f\n", bytes, t.min * 1e6, t.avg * 1e6, t.max * 1e6,
                  busbw(bytes, t.avg, comm.size()));
    }
  }
  const std::size_t n = std::size_t(gradient_mib * 1024 * 1024 / 4);
  if (comm.is_root()) std::printf("# bucketed all-reduce of a %.1f MiB gradient\n%12s %12s %12s\n", gradient_mib, "bucket KiB", "avg ms", "busbw GB/s");
  for (std::size_t kib : {128, 256, 512, 1024, 2048, 4096, 16384, 1 << 20}) {
    const Timing t = time_allreduce(comm, buf, n, kib * 1024, 10);
    if (comm.is_root()) std::printf("%12zu %12.2f %12.2f\n", std::min<std::size_t>(kib, n * 4 / 1024), t.avg * 1e3, busbw(n * 4, t.avg, comm.size()));
  }
  return 0;
}
