#include "train/tensor_parallel_comm.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace ellm {

TensorParallel<float> tensor_parallel(mpi::Comm& tp, mpi::Comm& dp, std::size_t bucket_bytes,
                                      bool sequence) {
  TensorParallel<float> ctx;
  ctx.shard = {tp.rank(), tp.size()};
  ctx.sequence = sequence;
  ctx.replicas.size = dp.size();
  ctx.replicas.sum = [&dp](double* x, std::size_t n) { dp.allreduce_sum(x, n, n * sizeof(double)); };
  // The group's shards of one (size·n) buffer; MPI counts and displacements are ints.
  const auto equal_parts = [&tp](std::size_t n) {
    if (n * tp.size() > std::size_t(std::numeric_limits<int>::max())) {
      throw std::runtime_error("sequence parallelism: " + std::to_string(n * tp.size()) +
                               " values per activation exceed one MPI message (2^31 − 1)");
    }
    std::vector<int> offsets;
    for (int r = 0; r <= tp.size(); r++) offsets.push_back(int(n) * r);
    return offsets;
  };
  ctx.reduce_scatter = [&tp, equal_parts](const float* full, float* mine, std::size_t n) {
    tp.reduce_scatter_sum(full, equal_parts(n), mine);
  };
  ctx.all_gather = [&tp, equal_parts](const float* mine, float* full, std::size_t n) {
    std::copy_n(mine, n, full + n * tp.rank());
    tp.allgather_in_place(full, equal_parts(n));
  };
  ctx.sum = [&tp, bucket_bytes](float* x, std::size_t n) { tp.allreduce_sum(x, n, bucket_bytes); };
  ctx.max = [&tp](float* x, std::size_t n) { tp.allreduce_max(x, n); };
  return ctx;
}

}  // namespace ellm
