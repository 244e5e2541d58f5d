// The only interface to hwloc. For now: what the node is made of, for the report's system block.
// (Rank mapping and binding policies build on this module.)
#pragma once
#include <string>

namespace ellm::topology {

struct NodeSummary {
  int packages = 0, numa_nodes = 0, cores = 0, pus = 0;
};

NodeSummary summarize_node();

// Hardware threads this process may run on (its CPU binding), and on the whole node.
struct Binding {
  int bound_pus = 0, node_pus = 0;
  bool restricted() const { return bound_pus < node_pus; }  // bound by mpirun, srun or a cgroup
};
Binding current_binding();
std::string hwloc_version();  // release built against, and the loaded library's API level

}  // namespace ellm::topology
