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
// One α, β per collective and size band over every sample of it: band_edges (bytes, ascending)
// split the sizes, none for one band; each band needs samples of two sizes at least (throws
// std::invalid_argument naming the collective and band). `source` says which sweeps.
LinkClass fit_link(const std::vector<std::pair<Collective, Sample>>& samples, const std::string& source,
                   const std::vector<double>& band_edges = {});

}  // namespace ellm::predict
