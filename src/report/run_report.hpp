// Turns the measurements of one run on every rank into its entry in report.json / runs.jsonl.
// Metric definitions: docs/METRICS.md; the shape: docs/report.schema.json; units are in the key
// names or in a "unit" field.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "efficientllm/config.hpp"
#include "train/trainer.hpp"

namespace ellm {

struct RankContext {
  int rank = 0;
  std::string host;
  int node = 0;  // world rank of the node's lowest rank: the node's id
  int local_rank = 0, local_size = 1;
  nlohmann::json placement;  // cli/node_setup.hpp place_rank
  nlohmann::json sampling;   // cli/node_setup.hpp sampling_record (null: sampling off)
  nlohmann::json node_info;  // the node's lowest rank only: topology, measured and theoretical peak
  std::uint64_t rss_hwm_bytes = 0;
  nlohmann::json memory_estimate;  // cli/estimate_command.hpp to_json(RankMemory): the estimate the run was checked with
};

// This rank's record, serialised for the gather at the root (raw per-step samples included).
nlohmann::json rank_record(const RunRecord& rec, const RankContext& ctx);

// The run's report entry. `root` supplies what every rank shares (loss curve, evaluations);
// `ranks` are every rank's rank_record in rank order.
nlohmann::json build_run_report(const RunConfig& run, int index, const RunRecord& root,
                                const std::vector<nlohmann::json>& ranks);

}  // namespace ellm
