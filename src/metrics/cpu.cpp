#include "metrics/cpu.hpp"

#include <ctime>
#include <sstream>

#include "metrics/sysfs.hpp"

namespace ellm {

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

std::optional<NodeCpuTimes> read_node_cpu(const std::filesystem::path& root, std::string& error) {
  const std::filesystem::path file = root / "proc/stat";
  const std::optional<std::string> text = sysfs::read_text(file, error);
  if (!text) return std::nullopt;
  std::istringstream in(*text);
  std::string label;
  std::uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  if (!(in >> label >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal) || label != "cpu") {
    error = file.string() + ": no \"cpu\" line with 8 counters";
    return std::nullopt;
  }
  // Steal is time the hypervisor gave to someone else: this node was not drawing power for it.
  const std::uint64_t busy = user + nice + system + irq + softirq;
  return NodeCpuTimes{busy, busy + idle + iowait + steal};
}

double utilization(const NodeCpuTimes& before, const NodeCpuTimes& after) {
  if (after.total <= before.total) return 0.0;
  const double u = double(after.busy - before.busy) / double(after.total - before.total);
  return u < 0 ? 0 : (u > 1 ? 1 : u);
}

}  // namespace ellm
