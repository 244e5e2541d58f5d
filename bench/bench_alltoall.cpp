// The measured limit of expert parallelism's token exchange: MPI_Alltoallv (through
// Comm::alltoallv_rows, as the trainer calls it) by message size, OSU style: warm-up, barrier
// outside the timed region, min/avg/max across ranks (of each rank's best of 5 timed loops). The
// size is what each rank sends in all, split as evenly as rows allow over every rank, itself
// included (a balanced MoE dispatch).
//   mpirun -np 2 build/bench/bench_alltoall
#include <algorithm>
#include <cstdio>
#include <limits>
#include <vector>

#include "mpi/comm.hpp"

using ellm::mpi::Comm;

namespace {

constexpr int kRowElems = 64;  // 256-byte rows; MPI sees only the float counts

struct Timing {
  double min, avg, max;
};

// Seconds per exchange, min/avg/max over ranks. The machine may be shared: each rank keeps its
// fastest of kTrials timed loops, so a loop that other work descheduled does not count.
constexpr int kTrials = 5;
Timing time_alltoallv(Comm& comm, const std::vector<float>& send, const std::vector<int>& send_rows,
                      std::vector<float>& recv, const std::vector<int>& recv_rows, int iters) {
  const auto exchange = [&] {
    comm.alltoallv_rows(send.data(), send_rows, recv.data(), recv_rows, kRowElems);
  };
  for (int i = 0; i < 3; i++) exchange();  // warm-up
  double mine = std::numeric_limits<double>::infinity();
  for (int trial = 0; trial < kTrials; trial++) {
    comm.barrier();
    const double t0 = ellm::mpi::wtime();
    for (int i = 0; i < iters; i++) exchange();
    mine = std::min(mine, (ellm::mpi::wtime() - t0) / iters);
  }
  return {comm.allreduce_min(mine), comm.allreduce_sum(mine) / comm.size(),
          comm.allreduce_max(mine)};
}

}  // namespace

int main(int argc, char** argv) {
  ellm::mpi::Session session(&argc, &argv);
  Comm comm = Comm::world();
  const int n = comm.size();
  const std::size_t max_bytes = std::size_t(16) << 20;
  // A rank receives up to n − 1 rows more than it sends when the rows do not split evenly.
  std::vector<float> send(max_bytes / sizeof(float), 1.0f), recv(send.size() + n * kRowElems);
  if (comm.is_root()) {
    std::printf(
        "# %s, %d ranks\n# MPI_Alltoallv (float), bytes each rank sends in all, %d-byte rows\n",
        ellm::mpi::library_version().c_str(), n, int(kRowElems * sizeof(float)));
    std::printf("%12s %12s %12s %12s %12s %12s\n", "bytes", "min us", "avg us", "max us",
                "algbw GB/s", "busbw GB/s");
  }
  for (std::size_t bytes = 1024; bytes <= max_bytes; bytes *= 2) {
    // Every sender gives rank r the same part of its rows, so r receives n times that part.
    const int rows = int(bytes / (kRowElems * sizeof(float)));
    std::vector<int> send_rows(n);
    for (int r = 0; r < n; r++) send_rows[r] = (r + 1) * rows / n - r * rows / n;
    const std::vector<int> recv_rows(n, send_rows[comm.rank()]);
    const int iters = std::clamp(int((std::size_t(256) << 20) / bytes), 5, 2000);
    const Timing t = time_alltoallv(comm, send, send_rows, recv, recv_rows, iters);
    // nccl-tests convention: algbw = bytes / time, busbw = algbw × (n−1)/n (the part that leaves
    // the rank; the block to itself is a local copy).
    const double algbw = bytes / t.avg / 1e9;
    if (comm.is_root()) {
      std::printf("%12zu %12.1f %12.1f %12.1f %12.2f %12.2f\n", bytes, t.min * 1e6, t.avg * 1e6,
                  t.max * 1e6, algbw, algbw * (n - 1) / n);
    }
  }
  return 0;
}
