// report.csv: one row per run (the cluster), per node and per rank, distinguished by `scope`,
// with the numbers at full precision. Columns that do not apply to a scope are empty.
#include "report/table.hpp"
#include "report/writer.hpp"

namespace ellm {
namespace {
using nlohmann::json;

struct Column {
  const char* name;
  const char* run;   // JSON pointer into the run entry ("" = not at this scope)
  const char* node;  // into a run's nodes[] row
  const char* rank;  // into a run's ranks[] row
};

constexpr Column kColumns[] = {
    {"step_s_mean", "/latency/step/mean", "", "/step_seconds/mean"},
    {"step_s_p95", "/latency/step/p95", "", "/step_seconds/p95"},
    {"step_s_max", "/latency/step/max", "", "/step_seconds/max"},
    {"step_imbalance", "/latency/step/imbalance", "", ""},
    {"compute_s_mean", "/latency/compute/mean", "", "/compute_seconds/mean"},
    {"compute_s_p95", "/latency/compute/p95", "", "/compute_seconds/p95"},
    {"compute_imbalance", "/latency/compute/imbalance", "", ""},
    {"comm_s_mean", "/latency/communication/mean", "", "/comm_seconds/mean"},
    {"comm_s_p95", "/latency/communication/p95", "", "/comm_seconds/p95"},
    {"comm_imbalance", "/latency/communication/imbalance", "", ""},
    {"comm_share", "/latency/communication_share", "", ""},
    {"tokens_per_s", "/throughput/tokens_per_s", "", "/tokens_per_s"},
    {"tt_tokens_per_param_per_s", "/throughput/tt_tokens_per_param_per_s", "", "/tt_tokens_per_param_per_s"},
    {"model_flops_per_s", "/compute/model_flops_per_s", "", "/model_flops_per_s"},
    {"measured_peak_flops_per_s", "/compute/measured_peak_flops_per_s", "/measured_peak/flops_per_s", "/measured_peak_flops_per_s"},
    {"mfu", "/compute/mfu", "", "/mfu"},
    {"theoretical_peak_flops_per_s", "/compute/theoretical_peak_flops_per_s", "/theoretical_peak/flops_per_s",
     "/theoretical_peak_flops_per_s"},
    {"gemm_relative_efficiency", "/compute/gemm_relative_efficiency", "", "/gemm_relative_efficiency"},
    {"pcu_busy_fraction", "/compute/pcu_busy_fraction/mean", "", "/pcu_busy_fraction"},
    {"amu", "/memory/amu/mean", "", "/memory/amu"},
    {"rss_mean_bytes", "/memory/rss_mean_bytes/sum", "", "/memory/rss_mean_bytes"},
    {"rss_peak_bytes", "/memory/rss_peak_bytes/max", "", "/memory/rss_peak_bytes"},
    {"available_bytes", "/memory/available_bytes/sum", "", "/memory/available_bytes"},
    {"energy_j", "/energy/joules", "/energy/joules", ""},
    {"aec_w", "/energy/aec_w", "/energy/aec_w", ""},
    {"j_per_token", "/energy/j_per_token", "/energy/j_per_token", ""},
    {"energy_estimated", "/energy/estimated", "/energy/estimated", ""},
    {"val_perplexity_final", "/quality/val_perplexity_final", "", ""},
};

std::vector<std::string> cells(const json& doc, const char* Column::*scope) {
  std::vector<std::string> out;
  for (const Column& c : kColumns) out.push_back(*(c.*scope) ? raw(at(doc, c.*scope)) : "");
  return out;
}

std::vector<std::string> row(const std::vector<std::string>& keys, const std::vector<std::string>& values) {
  std::vector<std::string> r = keys;
  r.insert(r.end(), values.begin(), values.end());
  return r;
}

}  // namespace

std::string render_csv(const json& report) {
  Table t{{"scope", "run", "node", "rank", "host"}, {}};
  for (const Column& c : kColumns) t.header.push_back(c.name);
  for (const json& run : report["runs"]) {
    const std::string name = run["name"].get<std::string>();
    t.rows.push_back(row({"run", name, "", "", ""}, cells(run, &Column::run)));
    for (const json& n : run["nodes"]) {
      t.rows.push_back(row({"node", name, raw(n["node"]), "", raw(n["host"])}, cells(n, &Column::node)));
    }
    for (const json& r : run["ranks"]) {
      t.rows.push_back(row({"rank", name, raw(r["node"]), raw(r["rank"]), raw(r["host"])}, cells(r, &Column::rank)));
    }
  }
  return t.csv();
}

}  // namespace ellm
