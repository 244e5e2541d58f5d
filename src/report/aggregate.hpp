// Arithmetic shared by the report's sections: figures across ranks, and the per-node view the
// root builds from the gathered rank records.
#pragma once
#include <map>
#include <vector>

#include <nlohmann/json.hpp>

namespace ellm {

// min / mean / max / sum across ranks of one number per rank, and imbalance = max ÷ mean
// (0 when the mean is 0). An empty list gives null.
nlohmann::json across_ranks(const std::vector<double>& v);

// Per rank (in rank order): its share of its node's cores, its measured and theoretical peak,
// FLOP/s. Records: rank_record JSON; node peaks come from each node's lowest rank.
struct RankPeaks {
  std::vector<double> core_share, measured, theoretical;
};
RankPeaks rank_peaks(const std::vector<nlohmann::json>& ranks);

// Rank indexes grouped by node id (the world rank of the node's lowest rank), in rank order.
std::map<int, std::vector<int>> ranks_by_node(const std::vector<nlohmann::json>& ranks);

// The run's node rows, per-node energy and the cluster energy summary:
// {"nodes": [...], "energy": {...}}. `tokens_per_rank` is what each rank trained on in the run.
nlohmann::json node_sections(const std::vector<nlohmann::json>& ranks, const RankPeaks& peaks,
                             double tokens_per_rank);

}  // namespace ellm
