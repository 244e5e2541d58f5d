// The dp × tp process grid: all process-group state in one place (Megatron's parallel_state).
// Tensor-parallel groups are runs of tp consecutive world ranks, so with ranks placed by node a
// group's frequent all-reduces stay inside a node; data-parallel groups join the ranks that hold
// the same tensor-parallel shard.
//
// Expert parallelism splits each data-parallel group further, ep inside dp as in Megatron-Core's
// default rank order (tp-cp-ep-dp-pp, here without cp and pp). An expert-parallel group is a run
// of ep consecutive dp ranks, {g·ep, …, g·ep + ep − 1} with the same tp rank: they share out the
// experts and exchange tokens by all-to-all in every MoE layer, the most frequent traffic after
// the tensor-parallel all-reduces, and their ranks lie within ep·tp consecutive world ranks, so
// on one node when they fit. The dp ranks holding the same experts (same dp rank mod ep) form
// the expert-data-parallel group of dp/ep ranks, which sums the experts' gradients once per step
// as dp does for the dense tensors.
#pragma once
#include "mpi/comm.hpp"

namespace ellm::mpi {

struct ProcessGrid {
  Comm tp;   // the ranks sharing one model replica, each holding a shard
  Comm dp;   // the ranks holding the same shard of different replicas
  Comm ep;   // ep consecutive dp ranks sharing out the experts (1 rank when ep = 1)
  Comm edp;  // the dp ranks holding the same experts: dp/ep of them (dp itself when ep = 1)
};

// world.size() must be a multiple of tp (the CLI checks the job's layout first); ep must divide
// dp = world.size() / tp (throws std::invalid_argument on every rank otherwise).
ProcessGrid make_grid(const Comm& world, int tp, int ep = 1);

}  // namespace ellm::mpi
