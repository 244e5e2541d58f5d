#include "report/aggregate.hpp"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "metrics/window.hpp"
#include "topology/mapping.hpp"

namespace ellm {
using nlohmann::json;

json across_ranks(const std::vector<double>& v) {
  if (v.empty()) return nullptr;
  const double sum = std::accumulate(v.begin(), v.end(), 0.0);
  const double mean = sum / double(v.size());
  const double max = *std::max_element(v.begin(), v.end());
  return {{"min", *std::min_element(v.begin(), v.end())}, {"mean", mean}, {"max", max},
          {"sum", sum}, {"imbalance", mean > 0 ? max / mean : 0.0}};
}

json bounded_ratio(double num, double den, const std::string& what, json& flags) {
  if (!(den > 0)) return nullptr;
  const double r = num / den;
  if (r <= 1.0) return r;
  char value[32];
  std::snprintf(value, sizeof value, "%.3f", r);
  flags.push_back(what + " computed as " + value + " (> 1, impossible): reported as null");
  return nullptr;
}

json calibration_check(double measured, double theoretical) {
  if (!(measured > 0) || !(theoretical > 0)) {
    return {{"measured_over_theoretical", nullptr}, {"plausible", nullptr}, {"note", "a peak is unknown: not checked"}};
  }
  const double r = measured / theoretical;
  const bool plausible = r >= kCalibrationLowest && r <= 1.0;
  std::string note = "the calibration sgemm reached a plausible share of the theoretical peak";
  if (r > 1.0) {
    note = "the calibration sgemm ran faster than the theoretical peak: the clock or the FMA table is wrong for "
           "this CPU, so MFU is overstated";
  } else if (!plausible) {
    note = "the calibration sgemm reached under " + std::to_string(int(kCalibrationLowest * 100)) +
           "% of the theoretical peak: the machine was busy during calibration or the BLAS lacks kernels for "
           "this CPU, so the GEMM-relative efficiency is overstated";
  }
  return {{"measured_over_theoretical", r}, {"plausible", plausible}, {"note", note}};
}

json downsample(const json& values, Keep keep) {
  if (!values.is_array() || values.size() <= kMaxSeriesPoints) return values;
  const std::size_t n = values.size(), bucket = (n + kMaxSeriesPoints - 1) / kMaxSeriesPoints;
  json out = json::array();
  for (std::size_t first = 0; first < n; first += bucket) {
    const std::size_t end = std::min(n, first + bucket);
    double max = values[first].get<double>(), sum = 0;
    for (std::size_t i = first; i < end; i++) {
      max = std::max(max, values[i].get<double>());
      sum += values[i].get<double>();
    }
    out.push_back(keep == Keep::Last ? values[end - 1] : keep == Keep::Max ? json(max) : json(sum / double(end - first)));
  }
  return out;
}

json downsample_fields(const json& series, const std::map<std::string, Keep>& keep) {
  if (!series.is_object()) return series;
  json out = series;
  for (const auto& [name, how] : keep) {
    if (out.contains(name)) out[name] = downsample(out[name], how);
  }
  return out;
}

std::map<int, std::vector<int>> ranks_by_node(const std::vector<json>& ranks) {
  std::map<int, std::vector<int>> nodes;
  for (int i = 0; i < int(ranks.size()); i++) nodes[ranks[i]["node"].get<int>()].push_back(i);
  return nodes;
}

RankPeaks rank_peaks(const std::vector<json>& ranks) {
  const std::size_t n = ranks.size();
  RankPeaks p{std::vector<double>(n), std::vector<double>(n), std::vector<double>(n)};
  for (const auto& [node, members] : ranks_by_node(ranks)) {
    std::vector<std::vector<int>> cores;
    for (const int i : members) cores.push_back(ranks[i]["placement"]["core_indexes"].get<std::vector<int>>());
    const std::vector<double> shares = topology::core_shares(cores);
    const json& info = ranks[node]["node_info"];  // node ids are world ranks: the leader's record
    const double measured_per_core =
        info["measured_peak"]["flops_per_s"].get<double>() / info["measured_peak"]["threads"].get<double>();
    const double theoretical_per_core = info["theoretical_peak"]["flops_per_s_per_core"].get<double>();
    for (std::size_t k = 0; k < members.size(); k++) {
      p.core_share[members[k]] = shares[k];
      p.measured[members[k]] = measured_per_core * shares[k];
      p.theoretical[members[k]] = theoretical_per_core * shares[k];
    }
  }
  return p;
}

namespace {

// A node's energy row: its sampler's record without the raw series, plus tokens and J/token.
json node_energy(const json& record, double tokens) {
  if (record.is_null()) return nullptr;
  json e = record;
  e.erase("samples");
  const bool measured = !e["joules"].is_null();
  e["tokens"] = tokens;
  e["j_per_token"] = measured && tokens > 0 ? json(e["joules"].get<double>() / tokens) : json(nullptr);
  return e;
}

}  // namespace

json run_windows(const std::vector<json>& ranks, const json& node_rows) {
  json out = json::object();
  for (const char* name : kWindowNames) {
    double seconds = 0, joules = 0, watts = 0;
    bool energy = !node_rows.empty();
    std::vector<double> amu, rss, busy;
    for (const json& r : ranks) {
      const json& w = r["sampling"]["windows"][name];
      seconds = std::max(seconds, w["seconds"].get<double>());
      if (!w["amu"].is_null()) amu.push_back(w["amu"].get<double>());
      if (!w["rss_mean_bytes"].is_null()) rss.push_back(w["rss_mean_bytes"].get<double>());
      if (!w["busy_cores"].is_null()) busy.push_back(w["busy_cores"].get<double>());
    }
    for (const json& n : node_rows) {
      const json& e = n["energy"];
      if (e.is_null() || e["windows"][name]["joules"].is_null()) {
        energy = false;
        continue;
      }
      joules += e["windows"][name]["joules"].get<double>();
      watts += e["windows"][name]["aec_w"].is_null() ? 0.0 : e["windows"][name]["aec_w"].get<double>();
    }
    out[name] = {{"seconds", seconds},
                 {"amu", across_ranks(amu)},
                 {"rss_mean_bytes", across_ranks(rss)},
                 {"busy_cores", across_ranks(busy)},
                 {"joules", energy ? json(joules) : json(nullptr)},
                 {"aec_w", energy && seconds > 0 ? json(watts) : json(nullptr)}};
  }
  return out;
}

json node_sections(const std::vector<json>& ranks, const RankPeaks& peaks, double tokens_per_rank) {
  json nodes = json::array();
  double joules = 0, watts = 0, tokens = 0;
  bool complete = true, estimated = false, sampled = true, partial = false;
  for (const auto& [node, members] : ranks_by_node(ranks)) {
    const json& leader = ranks[node];
    const json& info = leader["node_info"];
    json rank_ids = json::array();
    double share = 0;
    for (const int i : members) {
      rank_ids.push_back(ranks[i]["rank"]);
      share += peaks.core_share[i];
    }
    const double node_tokens = tokens_per_rank * double(members.size());
    const json energy = node_energy(leader["sampling"].is_null() ? json(nullptr) : leader["sampling"]["energy"], node_tokens);
    sampled = sampled && !energy.is_null();
    if (!energy.is_null() && !energy["joules"].is_null()) {
      joules += energy["joules"].get<double>();
      watts += energy["aec_w"].is_null() ? 0.0 : energy["aec_w"].get<double>();
      tokens += node_tokens;
      estimated = estimated || energy["estimated"].get<bool>();
      partial = partial || energy["partial"].get<bool>();
    } else {
      complete = false;
    }
    nodes.push_back({{"node", node},
                     {"host", leader["host"]},
                     {"ranks", rank_ids},
                     {"cores", info["topology"]["cores"]},
                     {"pus", info["topology"]["pus"]},
                     {"cores_in_use", share},
                     {"oversubscribed", int(members.size()) > info["topology"]["pus"].get<int>()},
                     {"measured_peak", info["measured_peak"]},
                     {"theoretical_peak", info["theoretical_peak"]},
                     {"calibration_check", calibration_check(info["measured_peak"]["flops_per_s"].get<double>(),
                                                             info["theoretical_peak"]["flops_per_s"].get<double>())},
                     {"energy", energy}});
  }
  // complete: every node has an energy figure; partial: some node's figure leaves out some of its
  // devices (nodes[].energy.coverage.missing says which).
  json energy = {{"sampled", sampled}, {"complete", complete && sampled}, {"estimated", estimated}, {"partial", partial},
                 {"unit", "J; AEC in W (J/s over each node's steps window, summed)"}};
  const bool any = tokens > 0;
  energy["joules"] = any ? json(joules) : json(nullptr);
  energy["aec_w"] = any ? json(watts) : json(nullptr);
  energy["j_per_token"] = any ? json(joules / tokens) : json(nullptr);
  energy["window"] = "steps";
  energy["note"] = "per node over the steps window (the measured steps: no set-up, warm-up, evaluation or checkpoint "
                   "saves) ÷ the tokens of those steps; the other windows in the run's windows section and each "
                   "node's energy.windows";
  return {{"nodes", nodes}, {"energy", energy}};
}

}  // namespace ellm
