// Arithmetic shared by the report's sections: figures across ranks, and the per-node view the
// root builds from the gathered rank records.
#pragma once
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ellm {

// min / mean / max / sum across ranks of one number per rank, and imbalance = max ÷ mean
// (0 when the mean is 0). An empty list gives null.
nlohmann::json across_ranks(const std::vector<double>& v);

// A utilisation or efficiency, in [0, 1] by definition: num ÷ den, null when den ≤ 0. Above 1 the
// figure is wrong, not good (a calibration that ran while the machine was busier than during the
// run, a clock below the real one): null, and a sentence saying which and why is added to `flags`.
nlohmann::json bounded_ratio(double num, double den, const std::string& what, nlohmann::json& flags);

// A node's calibration against its theoretical peak: plausible when the measured sgemm rate is
// within [kCalibrationLowest, 1] of it. {"measured_over_theoretical", "plausible", "note"}.
constexpr double kCalibrationLowest = 0.2;
nlohmann::json calibration_check(double measured, double theoretical);

// The raw series in a report (each rank's sampler and step times, each node's power) are cut to at
// most kMaxSeriesPoints points, so report.json stays bounded however long the run
// (docs/METRICS.md, "Size"). Buckets of ⌈n ÷ kMaxSeriesPoints⌉ consecutive samples become one
// point: the bucket's last value (times, cumulative counters), its maximum (resident set, so the
// peak survives) or its mean (step times, power). Every summary figure is computed before this.
constexpr std::size_t kMaxSeriesPoints = 128;
enum class Keep { Last, Max, Mean };
nlohmann::json downsample(const nlohmann::json& values, Keep keep);
// Each named array of an object downsampled as `keep` says (the others copied); null stays null.
nlohmann::json downsample_fields(const nlohmann::json& series, const std::map<std::string, Keep>& keep);

// Per rank (in rank order): its share of its node's cores, its measured and theoretical peak,
// FLOP/s. Records: rank_record JSON; node peaks come from each node's lowest rank.
struct RankPeaks {
  std::vector<double> core_share, measured, theoretical;
};
RankPeaks rank_peaks(const std::vector<nlohmann::json>& ranks);

// Rank indexes grouped by node id (the world rank of the node's lowest rank), in rank order.
std::map<int, std::vector<int>> ranks_by_node(const std::vector<nlohmann::json>& ranks);

// The run's figures per window (metrics/window.hpp) from every rank's sampler and every node's
// energy: {name: {"seconds" (max over ranks), "amu", "rss_mean_bytes", "busy_cores" (across
// ranks), "joules", "aec_w" (summed over nodes; null when a node has none)}}.
nlohmann::json run_windows(const std::vector<nlohmann::json>& ranks, const nlohmann::json& node_rows);

// The run's node rows, per-node energy and the cluster energy summary:
// {"nodes": [...], "energy": {...}}. `tokens_per_rank` is what each rank trained on in the steps
// window (the measured steps), whose energy J/token divides.
nlohmann::json node_sections(const std::vector<nlohmann::json>& ranks, const RankPeaks& peaks,
                             double tokens_per_rank);

}  // namespace ellm
