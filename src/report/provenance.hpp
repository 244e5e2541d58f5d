// Where a result came from: the build, the libraries, the command, the environment and the machine.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ellm {

// git commit, compiler and flags, Open MPI / OpenBLAS / hwloc versions, command line, the
// environment variables that change a run (OMPI_*, OPENBLAS_*, OMP_*, SLURM_*, ...), UTC date.
nlohmann::json provenance(const std::vector<std::string>& argv);
// This node: CPU model, cores (hwloc), memory (/proc/meminfo: hwloc's figure is wrong on
// ballooned VMs), kernel.
nlohmann::json system_info();
std::string utc_timestamp(const char* format = "%Y-%m-%dT%H:%M:%SZ");

}  // namespace ellm
