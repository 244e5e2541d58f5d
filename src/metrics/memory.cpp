#include "metrics/memory.hpp"

#include <unistd.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "metrics/sysfs.hpp"

namespace ellm {
namespace fs = std::filesystem;
namespace {

std::optional<std::uint64_t> meminfo_total(const fs::path& root, std::string& error) {
  const std::optional<std::string> text = sysfs::read_text(root / "proc/meminfo", error);
  if (!text) return std::nullopt;
  std::istringstream in(*text);
  std::string key;
  std::uint64_t kib = 0;
  while (in >> key >> kib) {
    if (key == "MemTotal:") return kib * 1024;
    in.ignore(1 << 10, '\n');
  }
  error = (root / "proc/meminfo").string() + ": no MemTotal line";
  return std::nullopt;
}

struct CgroupLimit {
  std::uint64_t bytes = 0;
  fs::path file;
};

// The smallest limit in the files named `limit_file` from the cgroup directory up to the mount
// point. Unlimited reads as "max" (v2) or a number near 2^63 (v1): both are skipped by the
// caller's comparison with MemTotal.
std::optional<CgroupLimit> tightest(const fs::path& mount, const std::string& cgroup_path,
                                    const std::string& limit_file) {
  std::optional<CgroupLimit> best;
  for (fs::path rel = fs::path(cgroup_path).relative_path();; rel = rel.parent_path()) {
    const fs::path file = mount / rel / limit_file;
    std::string error;
    if (const auto v = sysfs::read_u64(file, error); v && (!best || *v < best->bytes)) best = CgroupLimit{*v, file};
    if (rel.empty()) break;
  }
  return best;
}

// /proc/self/cgroup: "0::/path" (v2) or "N:memory:/path" (v1), the hierarchy mounted at the usual
// /sys/fs/cgroup places.
std::optional<CgroupLimit> cgroup_limit(const fs::path& root) {
  std::string error;
  const std::optional<std::string> text = sysfs::read_text(root / "proc/self/cgroup", error);
  if (!text) return std::nullopt;
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);) {
    const auto c1 = line.find(':'), c2 = line.find(':', c1 + 1);
    if (c1 == std::string::npos || c2 == std::string::npos) continue;
    const std::string controllers = line.substr(c1 + 1, c2 - c1 - 1), path = line.substr(c2 + 1);
    std::optional<CgroupLimit> found;
    if (controllers.empty()) {
      found = tightest(root / "sys/fs/cgroup", path, "memory.max");
    } else if (("," + controllers + ",").find(",memory,") != std::string::npos) {
      found = tightest(root / "sys/fs/cgroup/memory", path, "memory.limit_in_bytes");
    }
    if (found) return found;
  }
  return std::nullopt;
}

}  // namespace

std::uint64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size_pages = 0, resident_pages = 0;
  statm >> size_pages >> resident_pages;
  return resident_pages * std::uint64_t(sysconf(_SC_PAGESIZE));
}

std::uint64_t peak_resident_bytes() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "VmHWM:") {
      std::uint64_t kib = 0;
      status >> kib;
      return kib * 1024;
    }
    status.ignore(1 << 20, '\n');
  }
  return 0;
}

MemoryLimit available_memory(const fs::path& root, int ranks_on_node) {
  std::string error;
  const std::optional<std::uint64_t> total = meminfo_total(root, error);
  const std::string share = " ÷ " + std::to_string(ranks_on_node) + " rank(s) on the node";
  const std::optional<CgroupLimit> cgroup = cgroup_limit(root);
  if (cgroup && (!total || cgroup->bytes < *total)) {
    return {cgroup->bytes / ranks_on_node, "cgroup limit " + cgroup->file.string() + share};
  }
  if (!total) return {0, "unknown: " + error};
  return {*total / ranks_on_node, "/proc/meminfo MemTotal" + share};
}

}  // namespace ellm
