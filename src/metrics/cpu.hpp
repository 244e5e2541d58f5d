// CPU time: this process's (for the busy fraction, PCU(a)) and the node's (for the energy
// estimate's utilization).
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace ellm {

// CPU seconds used so far by every thread of this process (CLOCK_PROCESS_CPUTIME_ID).
double process_cpu_seconds();

// The node's CPU time in clock ticks since boot, from the "cpu" line of /proc/stat.
struct NodeCpuTimes {
  std::uint64_t busy = 0;   // user + nice + system + irq + softirq
  std::uint64_t total = 0;  // busy + idle + iowait + steal
};
std::optional<NodeCpuTimes> read_node_cpu(const std::filesystem::path& root, std::string& error);
// Busy fraction of the node between two readings, in [0, 1]; 0 when no time passed.
double utilization(const NodeCpuTimes& before, const NodeCpuTimes& after);

}  // namespace ellm
