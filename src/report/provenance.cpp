#include "report/provenance.hpp"

#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <fstream>

#include "build_info.hpp"
#include "kernels/gemm.hpp"
#include "mpi/comm.hpp"
#include "topology/topology.hpp"

extern char** environ;

namespace ellm {
namespace {

// Variables a user sets to change a run; the launcher's own bookkeeping (OMPI_MCA_orte_*,
// PMIX_*) is left out.
bool is_relevant_env(const std::string& name) {
  static const char* prefixes[] = {"OMPI_MCA_", "OPENBLAS_", "OMP_", "SLURM_", "GOTO_", "ELLM_"};
  if (name.starts_with("OMPI_MCA_orte_") || name.starts_with("OMPI_MCA_ess")) return false;
  for (const char* p : prefixes) {
    if (name.starts_with(p)) return true;
  }
  return false;
}

std::string cpuinfo_field(const std::string& key) {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(key)) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

std::uint64_t meminfo_total_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t kib = 0;
  while (in >> key >> kib) {
    if (key == "MemTotal:") return kib * 1024;
    in.ignore(1 << 10, '\n');
  }
  return 0;
}

}  // namespace

std::string utc_timestamp(const char* format) {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

nlohmann::json provenance(const std::vector<std::string>& argv) {
  nlohmann::json env = nlohmann::json::object();
  for (char** e = environ; *e; e++) {
    const std::string kv = *e;
    const std::size_t eq = kv.find('=');
    const std::string name = kv.substr(0, eq);
    if (is_relevant_env(name)) env[name] = kv.substr(eq + 1);
  }
  return {{"efficientllm_version", build_info::version},
          {"git_commit", build_info::git_commit},
          {"git_dirty", build_info::git_dirty},
          {"build_type", build_info::build_type},
          {"compiler", build_info::cxx_compiler},
          {"compiler_flags", build_info::cxx_flags},
          {"mpi_library", mpi::library_version()},
          {"openblas", kernels::blas_config()},
          {"openblas_core", kernels::blas_core()},
          {"hwloc", topology::hwloc_version()},
          {"command_line", argv},
          {"environment", env},
          {"date_utc", utc_timestamp()}};
}

nlohmann::json system_info() {
  utsname u{};
  uname(&u);
  const topology::NodeTopology node = topology::discover();
  return {{"cpu_model", cpuinfo_field("model name")},
          {"packages", node.packages},
          {"numa_nodes", node.numa_nodes},
          {"cores", node.cores.size()},
          {"hardware_threads", node.pu_count()},
          {"memory_bytes", meminfo_total_bytes()},
          {"kernel", std::string(u.sysname) + " " + u.release},
          {"machine", u.machine}};
}

}  // namespace ellm
