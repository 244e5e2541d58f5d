#include "train/expert_parallel_comm.hpp"

namespace ellm {

ExpertParallel<float> expert_parallel(mpi::Comm& ep) {
  ExpertParallel<float> ctx;
  ctx.rank = ep.rank();
  ctx.size = ep.size();
  ctx.exchange_counts = [&ep](const int* send, int* recv, int n) { ep.alltoall(send, recv, n); };
  ctx.exchange_rows = [&ep](const float* send, const std::vector<int>& send_rows, float* recv,
                            const std::vector<int>& recv_rows, int row_elems) {
    ep.alltoallv_rows(send, send_rows, recv, recv_rows, row_elems);
  };
  return ctx;
}

}  // namespace ellm
