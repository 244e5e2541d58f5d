#include "topology/topology.hpp"

#include <dirent.h>
#include <hwloc.h>
#include <hwloc/linux.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>

namespace ellm::topology {
namespace {

using TopoPtr = std::unique_ptr<hwloc_topology, decltype(&hwloc_topology_destroy)>;
using BitmapPtr = std::unique_ptr<hwloc_bitmap_s, decltype(&hwloc_bitmap_free)>;

BitmapPtr new_bitmap() { return {hwloc_bitmap_alloc(), &hwloc_bitmap_free}; }

// I/O devices are filtered out by default; keeping the important ones (GPUs, co-processors,
// their PCI devices) is what lets a rank be given an accelerator.
TopoPtr load(const char* xml_path) {
  hwloc_topology_t t;
  hwloc_topology_init(&t);
  TopoPtr topo(t, &hwloc_topology_destroy);
  hwloc_topology_set_io_types_filter(t, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
  if (xml_path != nullptr && hwloc_topology_set_xml(t, xml_path) != 0) {
    throw std::runtime_error(std::string(xml_path) + ": cannot read hwloc XML: " + std::strerror(errno));
  }
  if (hwloc_topology_load(t) != 0) {
    throw std::runtime_error(std::string(xml_path ? xml_path : "this machine") +
                             ": hwloc cannot load the topology: " + std::strerror(errno));
  }
  return topo;
}

// This machine's topology, loaded once per process (binding needs it on every call).
hwloc_topology_t system_topology() {
  static TopoPtr topo = load(nullptr);
  return topo.get();
}

std::vector<int> ids_of(hwloc_const_bitmap_t set) {
  std::vector<int> ids;
  unsigned id;
  hwloc_bitmap_foreach_begin(id, set) ids.push_back(int(id));
  hwloc_bitmap_foreach_end();
  return ids;
}

BitmapPtr bitmap_of(const std::vector<int>& ids) {
  BitmapPtr set = new_bitmap();
  for (const int id : ids) hwloc_bitmap_set(set.get(), unsigned(id));
  return set;
}

// Logical index of the package / NUMA node whose CPU set contains all of `set`; -1 if none does.
int enclosing(hwloc_topology_t t, hwloc_obj_type_t type, hwloc_const_cpuset_t set) {
  const int n = hwloc_get_nbobjs_by_type(t, type);
  for (int i = 0; i < n; i++) {
    hwloc_obj_t obj = hwloc_get_obj_by_type(t, type, unsigned(i));
    if (!hwloc_bitmap_iszero(set) && hwloc_bitmap_isincluded(set, obj->cpuset)) return i;
  }
  return -1;
}

std::vector<Core> cores_of(hwloc_topology_t t) {
  // Some platforms expose PUs without Core objects: each PU is then its own core.
  const hwloc_obj_type_t type = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
  std::vector<Core> cores;
  for (int i = 0, n = hwloc_get_nbobjs_by_type(t, type); i < n; i++) {
    hwloc_obj_t obj = hwloc_get_obj_by_type(t, type, unsigned(i));
    Core c;
    c.index = i;
    c.package = std::max(0, enclosing(t, HWLOC_OBJ_PACKAGE, obj->cpuset));
    c.numa = std::max(0, enclosing(t, HWLOC_OBJ_NUMANODE, obj->cpuset));
    c.pus = ids_of(obj->cpuset);
    if (!c.pus.empty()) cores.push_back(c);
  }
  return cores;
}

std::vector<CacheLevel> caches_of(hwloc_topology_t t) {
  const std::pair<hwloc_obj_type_t, const char*> levels[] = {
      {HWLOC_OBJ_L1CACHE, "L1d"}, {HWLOC_OBJ_L2CACHE, "L2"},
      {HWLOC_OBJ_L3CACHE, "L3"},  {HWLOC_OBJ_L4CACHE, "L4"},   {HWLOC_OBJ_L5CACHE, "L5"}};
  std::vector<CacheLevel> caches;
  for (const auto& [type, name] : levels) {
    const int n = hwloc_get_nbobjs_by_type(t, type);
    if (n > 0) caches.push_back({name, hwloc_get_obj_by_type(t, type, 0)->attr->cache.size, n});
  }
  return caches;
}

// A compute device, not a display: DRM nodes alone (card0, renderD128) also belong to a
// server's management VGA, so only co-processors (CUDA, OpenCL, oneAPI) and GPU management
// back-ends (NVML, ROCm SMI) count as accelerators.
bool is_compute_device(hwloc_obj_t osdev) {
  const hwloc_obj_osdev_type_t type = osdev->attr->osdev.type;
  if (type == HWLOC_OBJ_OSDEV_COPROC) return true;
  if (type != HWLOC_OBJ_OSDEV_GPU || osdev->name == nullptr) return false;
  const std::string name = osdev->name;
  return !(name.starts_with("card") || name.starts_with("renderD") || name.starts_with("controlD"));
}

std::vector<Gpu> gpus_of(hwloc_topology_t t) {
  struct Found {
    Gpu gpu;
    bool compute = false;
  };
  std::map<hwloc_obj_t, Found> by_device;  // several OS devices of one PCI device are one GPU
  std::vector<hwloc_obj_t> order;
  for (hwloc_obj_t os = hwloc_get_next_osdev(t, nullptr); os; os = hwloc_get_next_osdev(t, os)) {
    const auto type = os->attr->osdev.type;
    if (type != HWLOC_OBJ_OSDEV_GPU && type != HWLOC_OBJ_OSDEV_COPROC) continue;
    hwloc_obj_t pci = os->parent;
    while (pci && pci->type != HWLOC_OBJ_PCI_DEVICE) pci = pci->parent;
    hwloc_obj_t key = pci ? pci : os;
    if (!by_device.contains(key)) order.push_back(key);
    Found& f = by_device[key];
    f.compute = f.compute || is_compute_device(os);
    f.gpu.os_devices.push_back(os->name ? os->name : "?");
    const char* model = hwloc_obj_get_info_by_name(os, "GPUModel");
    if (model && f.gpu.model.empty()) f.gpu.model = model;
    if (pci && f.gpu.pci_busid.empty()) {
      char busid[32];
      const auto& a = pci->attr->pcidev;
      std::snprintf(busid, sizeof busid, "%04x:%02x:%02x.%01x", a.domain, a.bus, a.dev, a.func);
      f.gpu.pci_busid = busid;
      hwloc_obj_t near = hwloc_get_non_io_ancestor_obj(t, pci);
      f.gpu.package = enclosing(t, HWLOC_OBJ_PACKAGE, near->cpuset);
      f.gpu.numa = enclosing(t, HWLOC_OBJ_NUMANODE, near->cpuset);
    }
  }
  std::vector<Gpu> gpus;
  for (hwloc_obj_t key : order) {
    Found& f = by_device[key];
    if (!f.compute) continue;
    if (f.gpu.model.empty()) f.gpu.model = "unknown";
    gpus.push_back(std::move(f.gpu));
  }
  return gpus;
}

NodeTopology describe(hwloc_topology_t t, std::string source) {
  NodeTopology node;
  node.source = std::move(source);
  hwloc_obj_t pkg = hwloc_get_obj_by_type(t, HWLOC_OBJ_PACKAGE, 0);
  const char* model = pkg ? hwloc_obj_get_info_by_name(pkg, "CPUModel") : nullptr;
  node.cpu_model = model ? model : "unknown";
  node.packages = std::max(1, hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PACKAGE));
  node.numa_nodes = std::max(1, hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE));
  node.cores = cores_of(t);
  node.caches = caches_of(t);
  node.gpus = gpus_of(t);
  return node;
}

}  // namespace

int NodeTopology::pu_count() const { return int(all_pus().size()); }

std::vector<int> NodeTopology::all_pus() const {
  std::vector<int> pus;
  for (const Core& c : cores) pus.insert(pus.end(), c.pus.begin(), c.pus.end());
  std::sort(pus.begin(), pus.end());
  return pus;
}

NodeTopology discover() { return describe(system_topology(), "this machine"); }

NodeTopology load_xml(const std::string& xml_path) { return describe(load(xml_path.c_str()).get(), xml_path); }

std::string list_text(const std::vector<int>& ids) {
  std::string out;
  for (std::size_t i = 0; i < ids.size();) {
    std::size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) j++;
    if (!out.empty()) out += ',';
    out += std::to_string(ids[i]);
    if (j > i) out += '-' + std::to_string(ids[j]);
    i = j + 1;
  }
  return out;
}

nlohmann::json to_json(const NodeTopology& node) {
  nlohmann::json caches = nlohmann::json::array(), gpus = nlohmann::json::array();
  for (const CacheLevel& c : node.caches) {
    caches.push_back({{"name", c.name}, {"size_bytes", c.size_bytes}, {"count", c.count}});
  }
  for (const Gpu& g : node.gpus) {
    gpus.push_back({{"pci_busid", g.pci_busid}, {"model", g.model}, {"os_devices", g.os_devices},
                    {"package", g.package}, {"numa", g.numa}});
  }
  // One row per (package, NUMA node): the map a reader checks placements against.
  std::map<std::pair<int, int>, std::pair<std::vector<int>, std::vector<int>>> domains;
  for (const Core& c : node.cores) {
    auto& [cores, pus] = domains[{c.package, c.numa}];
    cores.push_back(c.index);
    pus.insert(pus.end(), c.pus.begin(), c.pus.end());
  }
  nlohmann::json rows = nlohmann::json::array();
  for (auto& [key, sets] : domains) {
    std::sort(sets.second.begin(), sets.second.end());
    rows.push_back({{"package", key.first}, {"numa", key.second}, {"cores", list_text(sets.first)},
                    {"pus", list_text(sets.second)}});
  }
  return {{"source", node.source}, {"cpu_model", node.cpu_model}, {"packages", node.packages},
          {"numa_nodes", node.numa_nodes}, {"cores", node.cores.size()}, {"pus", node.pu_count()},
          {"caches", caches}, {"gpus", gpus}, {"domains", rows}};
}

std::vector<int> current_binding() {
  hwloc_topology_t t = system_topology();
  BitmapPtr set = new_bitmap();
  if (hwloc_get_cpubind(t, set.get(), HWLOC_CPUBIND_PROCESS) != 0) return discover().all_pus();
  hwloc_bitmap_and(set.get(), set.get(), hwloc_topology_get_topology_cpuset(t));
  return ids_of(set.get());
}

void bind_process(const std::vector<int>& pus) {
  BitmapPtr set = bitmap_of(pus);
  if (hwloc_set_cpubind(system_topology(), set.get(), HWLOC_CPUBIND_PROCESS) != 0) {
    throw std::runtime_error("cannot bind to PUs " + list_text(pus) + ": " + std::strerror(errno));
  }
}

ThreadCheck check_threads(const std::vector<int>& pus) {
  BitmapPtr want = bitmap_of(pus), got = new_bitmap();
  ThreadCheck check;
  const auto close_dir = [](DIR* d) { closedir(d); };
  std::unique_ptr<DIR, decltype(close_dir)> dir(opendir("/proc/self/task"), close_dir);
  while (dirent* entry = dir ? readdir(dir.get()) : nullptr) {
    if (entry->d_name[0] == '.') continue;
    const pid_t tid = pid_t(std::atoi(entry->d_name));
    if (hwloc_linux_get_tid_cpubind(system_topology(), tid, got.get()) != 0) continue;  // thread ended
    check.total++;
    if (hwloc_bitmap_isincluded(got.get(), want.get())) check.inside++;
  }
  return check;
}

std::string hwloc_version() {
  // HWLOC_VERSION is the release built against; the run-time library reports its API level.
  const unsigned v = hwloc_get_api_version();
  return std::string(HWLOC_VERSION) + " (run-time API " + std::to_string(v >> 16) + "." +
         std::to_string((v >> 8) & 0xff) + "." + std::to_string(v & 0xff) + ")";
}

}  // namespace ellm::topology
