// The only interface to hwloc: what a node is made of (packages, NUMA nodes, cores, PUs, caches,
// accelerators), read from this machine or from an hwloc XML file, and binding this process.
// Rank placement policies are pure functions over NodeTopology (topology/mapping.hpp).
//
// CPU sets are sorted lists of PU OS indexes (the numbers Linux and taskset use).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ellm::topology {

struct Core {
  int index = 0;        // hwloc logical index: neighbours in the cache hierarchy are adjacent
  int package = 0;      // logical index of its package
  int numa = 0;         // logical index of its NUMA node
  std::vector<int> pus; // OS indexes of its hardware threads
};

struct CacheLevel {
  std::string name;  // "L1d" (data or unified), "L2", "L3", ... (hwloc drops instruction caches)
  std::uint64_t size_bytes = 0;  // of one instance
  int count = 0;
};

// One accelerator: a PCI device with at least one GPU or co-processor OS device below it
// (a GPU shows up as several: cuda0, nvml0, card0, renderD128, opencl0d0).
struct Gpu {
  std::string pci_busid;  // "0000:65:00.0"; empty when not on PCI
  std::string model;      // the GPUModel/CoProcName info of its OS devices, else "unknown"
  std::vector<std::string> os_devices;
  int package = -1, numa = -1;  // locality; -1 when hwloc does not know it
};

struct NodeTopology {
  std::string source;          // "this machine" or the XML file
  std::string cpu_model;       // the CPUModel info of the first package, if any
  int packages = 0, numa_nodes = 0;
  std::vector<Core> cores;     // logical order, usable ones only (cgroup-disallowed ones left out)
  std::vector<CacheLevel> caches;
  std::vector<Gpu> gpus;
  int pu_count() const;
  std::vector<int> all_pus() const;
};

NodeTopology discover();                             // this machine
NodeTopology load_xml(const std::string& xml_path);  // a saved or synthetic machine; throws on error

nlohmann::json to_json(const NodeTopology& node);
// "0-3,8,10-11" (the hwloc/taskset list form) from sorted OS indexes.
std::string list_text(const std::vector<int>& ids);

// This process's CPU binding at the moment (all the node's PUs when unbound).
std::vector<int> current_binding();
// Binds every thread of the process (OpenBLAS's workers included) to the PUs; threads created
// later inherit it. Throws std::runtime_error when the OS refuses.
void bind_process(const std::vector<int>& pus);
// How many of the process's threads are bound inside `pus`: the check that binding took.
struct ThreadCheck {
  int inside = 0, total = 0;
};
ThreadCheck check_threads(const std::vector<int>& pus);

std::string hwloc_version();  // release built against, and the loaded library's API level

}  // namespace ellm::topology
