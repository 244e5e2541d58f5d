// Memory of this process (/proc/self) and the memory a rank may use (cgroup or /proc/meminfo).
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

namespace ellm {

std::uint64_t resident_bytes();       // current RSS, /proc/self/statm
std::uint64_t peak_resident_bytes();  // high-water mark, VmHWM in /proc/self/status

struct MemoryLimit {
  std::uint64_t bytes = 0;  // 0: unknown (then `source` says why)
  std::string source;       // how it was found, e.g. "/proc/meminfo MemTotal ÷ 2 ranks on the node"
};

// The memory available to one rank: the tightest cgroup memory limit on the way from this
// process's cgroup to the root (v2 memory.max, v1 memory.limit_in_bytes), else /proc/meminfo
// MemTotal — hwloc's figure is wrong on ballooned VMs — divided by the ranks on the node, which
// share it. Files are read under `root`.
MemoryLimit available_memory(const std::filesystem::path& root, int ranks_on_node);

}  // namespace ellm
