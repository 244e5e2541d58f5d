// Turns the measurements of one run on every rank into its entry in report.json / runs.jsonl.
// Metric definitions: ../shared/METRICS.md; units are in the key names or in a "unit" field.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "efficientllm/config.hpp"
#include "train/trainer.hpp"

namespace ellm {

struct RankContext {
  int rank = 0;
  std::string host;
  int blas_threads = 1;
  double sgemm_peak_flops = 0;  // measured on this rank's threads at job start
};

// This rank's record, serialised for the gather at the root (raw per-step samples included).
nlohmann::json rank_record(const RunRecord& rec, const RankContext& ctx);

// The run's report entry. `root` supplies what every rank shares (loss curve, evaluations);
// `ranks` are every rank's rank_record in rank order.
nlohmann::json build_run_report(const RunConfig& run, int index, const RunRecord& root,
                                const std::vector<nlohmann::json>& ranks);

}  // namespace ellm
