// The dp × tp process grid: all process-group state in one place (Megatron's parallel_state).
// Tensor-parallel groups are runs of tp consecutive world ranks, so with ranks placed by node a
// group's frequent all-reduces stay inside a node; data-parallel groups join the ranks that hold
// the same tensor-parallel shard.
#pragma once
#include "mpi/comm.hpp"

namespace ellm::mpi {

struct ProcessGrid {
  Comm tp;  // the ranks sharing one model replica, each holding a shard
  Comm dp;  // the ranks holding the same shard of different replicas
};

// world.size() must be a multiple of tp (the CLI checks the job's layout first).
ProcessGrid make_grid(const Comm& world, int tp);

}  // namespace ellm::mpi
