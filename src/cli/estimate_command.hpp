// `efficientllm estimate JOB.json [--ranks N] [--json]`: what every run of a job will need before it
// runs — parameters, FLOPs per step, memory per rank by part, an estimated step time — and `run`'s
// check that each rank's estimate fits the memory available to it (docs/ESTIMATE.md).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "efficientllm/config.hpp"
#include "metrics/memory.hpp"
#include "train/estimate.hpp"

namespace ellm::cli {

struct EstimateOptions {
  int ranks = 0;           // 0: each run's dp × tp
  bool json = false;
  double rate_gflops = 0;  // one rank's FLOP/s for the step time; 0: the machine's theoretical peak
  bool measure_peak = false;  // the rate from a calibration sgemm instead of the theoretical peak
};

// A rank's memory estimate as JSON: every part in bytes and the total.
nlohmann::json to_json(const RankMemory& m);

// Prints the estimate of every run on stdout. corpus_bytes: each run's corpus once loaded;
// runtime_bytes: this process's resident memory, the estimate of a rank's runtime part.
void print_estimate(const Job& job, const std::vector<std::size_t>& corpus_bytes, const EstimateOptions& o,
                    double runtime_bytes);

// This rank's estimate for `run` on `world` ranks, runtime included.
RankMemory rank_estimate(const RunConfig& run, int world, int rank, std::size_t corpus_bytes, double runtime_bytes);
// "" when `m` fits in `limit` (or the limit is unknown), else the message naming the run, the
// rank, the estimate by part and what is available.
std::string memory_problem(const RunConfig& run, int rank, const RankMemory& m, const MemoryLimit& limit);

}  // namespace ellm::cli
