#include "report/compare.hpp"

namespace ellm {
namespace {
using nlohmann::json;

struct Metric {
  const char* name;
  const char* pointer;  // into a run entry
  const char* format;   // printf, for Markdown
  double scale;         // shown × scale in Markdown (ms, %)
};

constexpr Metric kMetrics[] = {
    {"step_s_mean", "/latency/step/mean", "%.1f ms", 1e3},
    {"step_s_p95", "/latency/step/p95", "%.1f ms", 1e3},
    {"comm_share", "/latency/communication_share", "%.1f%%", 100},
    {"tokens_per_s", "/throughput/tokens_per_s", "%.0f", 1},
    {"tt_tokens_per_param_per_s", "/throughput/tt_tokens_per_param_per_s", "%.2e", 1},
    {"mfu", "/compute/mfu", "%.1f%%", 100},
    {"gemm_relative_efficiency", "/compute/gemm_relative_efficiency", "%.1f%%", 100},
    {"pcu_busy_fraction", "/compute/pcu_busy_fraction/mean", "%.1f%%", 100},
    {"amu", "/memory/amu/mean", "%.2f%%", 100},
    {"rss_peak_bytes", "/memory/rss_peak_bytes/max", "%.0f MiB", 1.0 / (1024 * 1024)},
    {"j_per_token", "/energy/j_per_token", "%.3g", 1},
    {"aec_w", "/energy/aec_w", "%.1f", 1},
    {"val_perplexity_final", "/quality/val_perplexity_final", "%.3f", 1},
};
// Ratios a scaling study reads: speed, cost per token, quality.
constexpr const char* kRatios[] = {"step_s_mean", "tokens_per_s", "j_per_token", "val_perplexity_final"};

const json* find_run(const json& report, const std::string& name) {
  for (const json& run : report["runs"]) {
    if (run["name"] == name) return &run;
  }
  return nullptr;
}

json values_of(const json& run) {
  json values = json::object();
  for (const Metric& m : kMetrics) values[m.name] = at(run, m.pointer);
  return values;
}

}  // namespace

json compare_reports(const std::vector<std::pair<std::string, json>>& reports) {
  const json& first = reports.front().second;
  json rows = json::array();
  for (const auto& [dir, report] : reports) {
    for (const json& run : report["runs"]) {
      const std::string name = run["name"].get<std::string>();
      const json* base = find_run(first, name);
      if (base == nullptr) base = &first["runs"].at(0);
      const json values = values_of(run), base_values = values_of(*base);
      json ratios = json::object();
      for (const char* r : kRatios) {
        const json &v = values[r], &b = base_values[r];
        ratios[r] = v.is_number() && b.is_number() && b.get<double>() != 0 ? json(v.get<double>() / b.get<double>()) : json(nullptr);
      }
      rows.push_back({{"report", dir},
                      {"world_ranks", report["world"]["ranks"]},
                      {"hosts", report["world"]["hosts"]},
                      {"run", name},
                      {"parameters", run["model"]["parameters"]},
                      {"energy_estimated", run["energy"]["estimated"]},
                      {"values", values},
                      {"baseline", reports.front().first + ":" + (*base)["name"].get<std::string>()},
                      {"ratios", ratios}});
    }
  }
  return {{"comparison", {{"reports", reports.size()}, {"rows", rows},
                          {"note", "ratios: this run ÷ its baseline (the first report's run of the same name, "
                                   "else the first report's first run)"}}}};
}

Table comparison_table(const json& comparison, bool raw_numbers) {
  Table t{{"report", "ranks", "hosts", "run", "params"}, {}};
  for (const Metric& m : kMetrics) t.header.push_back(m.name);
  t.header.push_back("energy_estimated");
  t.header.push_back("baseline");
  for (const char* r : kRatios) t.header.push_back(std::string(r) + "_ratio");
  for (const json& row : comparison["comparison"]["rows"]) {
    std::string hosts;
    for (const json& h : row["hosts"]) hosts += (hosts.empty() ? std::string() : " ") + h.get<std::string>();
    std::vector<std::string> cells = {row["report"], raw(row["world_ranks"]), hosts, row["run"], raw(row["parameters"])};
    for (const Metric& m : kMetrics) {
      const json& v = row["values"][m.name];
      cells.push_back(raw_numbers ? raw(v) : v.is_number() ? fmt(m.format, v.get<double>() * m.scale) : "–");
    }
    cells.push_back(raw(row["energy_estimated"]));
    cells.push_back(row["baseline"]);
    for (const char* r : kRatios) cells.push_back(raw_numbers ? raw(row["ratios"][r]) : fmt("%.3f×", row["ratios"][r]));
    t.rows.push_back(cells);
  }
  return t;
}

}  // namespace ellm
