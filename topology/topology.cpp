#include "topology/topology.hpp"

#include <hwloc.h>

namespace ellm::topology {

NodeSummary summarize_node() {
  hwloc_topology_t topo;
  hwloc_topology_init(&topo);
  hwloc_topology_load(topo);
  NodeSummary s;
  s.packages = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE);
  s.numa_nodes = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
  s.cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
  s.pus = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
  hwloc_topology_destroy(topo);
  return s;
}

Binding current_binding() {
  hwloc_topology_t topo;
  hwloc_topology_init(&topo);
  hwloc_topology_load(topo);
  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  Binding b;
  b.node_pus = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
  b.bound_pus = hwloc_get_cpubind(topo, set, HWLOC_CPUBIND_PROCESS) == 0
                    ? hwloc_bitmap_weight(set)
                    : b.node_pus;
  hwloc_bitmap_free(set);
  hwloc_topology_destroy(topo);
  return b;
}

std::string hwloc_version() {
  // HWLOC_VERSION is the release built against; the run-time library reports its API level.
  const unsigned v = hwloc_get_api_version();
  return std::string(HWLOC_VERSION) + " (run-time API " + std::to_string(v >> 16) + "." +
         std::to_string((v >> 8) & 0xff) + "." + std::to_string(v & 0xff) + ")";
}

}  // namespace ellm::topology
