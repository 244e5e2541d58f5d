// The paper's claims judged on our runs (issue 17's claim table). A claims file
// (jobs/paper/claims.json, docs/REPRODUCE.md) lists each claim with its source in the paper, the
// paper's figures, the study job whose report judges it, the metric (a JSON pointer into a run of
// report.json) and the comparison:
//   "a < b" / "a > b"   every group named in b (one name or a list) against group a: Welch's
//                       t-test over the seeds; holds when each comparison holds (src/stats);
//   "a / b in [lo, hi]" the per-seed ratio (runs paired by seed) has its 95 % interval in range.
// A group is the runs of one configuration over seeds: run names with their `seed=S` part
// removed ("mlp=moe,seed=2" is group "mlp=moe"). Fewer than 3 seeds in a group: inconclusive,
// whatever the numbers say. An optional "note" says where scale or hardware explains a result.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stats/seed_stats.hpp"

namespace ellm {

struct ClaimResult {
  std::string id, source, statement, paper, metric, comparison;
  std::string ours;     // "a: mean ± half-width (n) | b: …" or the ratio's interval
  stats::Verdict verdict = stats::Verdict::Inconclusive;
  std::string reason;   // why inconclusive / the test's p-values
};

// Reads the claims file (std::runtime_error "FILE: /POINTER: what is allowed" on bad input).
nlohmann::json load_claims(const std::string& path);
// Judges every claim of `claims` whose "job" has a report in `reports` (job file name, e.g.
// "moe.json", → report.json); a claim without its report is listed as inconclusive, "not run".
std::vector<ClaimResult> judge_claims(const nlohmann::json& claims,
                                      const std::vector<std::pair<std::string, nlohmann::json>>& reports);
// The claim table in Markdown: claim, source, paper, ours, verdict, reason.
std::string claim_table_markdown(const std::vector<ClaimResult>& results);
nlohmann::json claim_table_json(const std::vector<ClaimResult>& results);

}  // namespace ellm
