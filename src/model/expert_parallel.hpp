// Expert parallelism (GShard, Lepikhin et al. 2020; Megatron-Core, DeepSpeed-MoE) as the model
// sees it: its place in the expert-parallel group, which shares out a MoE layer's experts, and
// the two exchanges that move tokens to their experts' ranks and back. The trainer fills them
// from the expert-parallel MPI communicator (train/expert_parallel_comm.hpp); tests fill them
// with in-process threads (tests/support/thread_expert_group.hpp).
//
// A MoE layer's dispatch: count the tokens routed to each expert, exchange_counts so every rank
// learns how many rows it will receive, then exchange_rows with the rows sorted by destination;
// the combine sends the expert outputs back with the two row-count vectors swapped.
#pragma once
#include <functional>
#include <vector>

namespace ellm {

template <class T>
struct ExpertParallel {
  int rank = 0, size = 1;
  // every rank sends n ints to every rank: send (size·n) → recv (size·n), block r from rank r
  std::function<void(const int* send, int* recv, int n)> exchange_counts;
  // rows of row_elems values: send_rows[r] rows to rank r (contiguous in rank order),
  // recv_rows[r] from rank r
  std::function<void(const T* send, const std::vector<int>& send_rows, T* recv,
                     const std::vector<int>& recv_rows, int row_elems)>
      exchange_rows;
};

}  // namespace ellm
