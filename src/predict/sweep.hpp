// A measured collective sweep (bench/bench_collectives --out FILE.json):
//   {"mpi": "...", "ranks": p, "hosts": h, "load_average": x,
//    "samples": [{"collective": "all_reduce", "bytes": n, "seconds": t}, …]}
// and the link class fitted to one or more of them (alpha_beta.hpp, per collective).
#pragma once
#include <string>
#include <vector>

#include "predict/network.hpp"

namespace ellm::predict {

// Throws std::runtime_error "FILE: /pointer: ..." on a file that is not a sweep.
std::vector<std::pair<Collective, Sample>> read_sweep(const std::string& file);
// One α, β per collective over every sample of it; `source` says which sweeps.
LinkClass fit_link(const std::vector<std::pair<Collective, Sample>>& samples, const std::string& source);

}  // namespace ellm::predict
