// Where each rank of a node runs: the mapping policies as pure functions of the node's topology,
// so they can be tested on synthetic machines (tests/topologies/*.xml) without binding anything.
//
//   compact  ranks take consecutive blocks of cores in hwloc's logical order (neighbouring ranks
//            share caches and NUMA nodes);
//   scatter  ranks go round-robin over the (package, NUMA node) domains, alternating packages,
//            and share out each domain's cores;
//   inherit  the binding the process started with (mpirun, srun, a cgroup) is kept as it is.
// With more ranks than cores the unit is the hardware thread; with more ranks than hardware
// threads the node is oversubscribed and ranks share PUs.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "efficientllm/config.hpp"
#include "topology/topology.hpp"

namespace ellm::topology {

struct Placement {
  MappingPolicy policy = MappingPolicy::Inherit;
  // "set" (bound by efficientllm), "inherited" (bound by the launcher or a cgroup), or "none"
  // (inherit on an unbound process: the OS schedules it anywhere on the node).
  std::string binding;
  std::vector<int> pus;                   // the rank's CPU set: PU OS indexes, sorted
  std::vector<int> cores;                 // logical indexes of the cores it touches
  std::vector<int> packages, numa_nodes;  // logical indexes
  int gpu = -1;                           // index into NodeTopology::gpus; -1: none
  int blas_threads = 1;                   // cores it has (its share of the node when unbound)
  bool oversubscribed = false;            // more ranks on the node than PUs
};

// The placement of local rank `local_rank` of `local_size` on `node`. `inherited` is the binding
// the process started with (used by MappingPolicy::Inherit only).
Placement map_rank(const NodeTopology& node, MappingPolicy policy, int local_rank, int local_size,
                   const std::vector<int>& inherited);

// Each rank's share of the node's cores: Σ over its cores of 1 / (ranks whose set holds that
// core). Two ranks on one core get 0.5 each; the shares of a node add up to the cores in use.
std::vector<double> core_shares(const std::vector<std::vector<int>>& cores_of_ranks);

nlohmann::json to_json(const Placement& p, const NodeTopology& node);

}  // namespace ellm::topology
