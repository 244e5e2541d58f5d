// Aggregation at the root on known inputs: latency percentiles and imbalance, per-rank peaks from
// core shares, PCU, per-node energy and the cluster sums, CSV rows, the side-by-side comparison,
// and every report written here is checked against docs/report.schema.json.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include "report/aggregate.hpp"
#include "report/compare.hpp"
#include "report/provenance.hpp"
#include "report/run_report.hpp"
#include "report/writer.hpp"
#include "metrics/flops.hpp"
#include "metrics/window.hpp"
#include "util/rng.hpp"

namespace ellm {
namespace {
using nlohmann::json;

json node_info(int cores) {
  return {{"host", "h"},
          {"ranks_on_node", 2},
          {"topology", {{"source", "test"}, {"cpu_model", "x"}, {"packages", 1}, {"numa_nodes", 1}, {"cores", cores},
                        {"pus", cores}, {"caches", json::array()}, {"gpus", json::array()},
                        {"domains", {{{"package", 0}, {"numa", 0}, {"cores", "0-3"}, {"pus", "0-3"}}}}}},
          {"measured_peak", {{"flops_per_s", 400.0}, {"threads", cores}, {"matrix_n", 1024}, {"pus", "0-3"}, {"method", "test"}}},
          {"theoretical_peak", {{"flops_per_s", 800.0}, {"flops_per_s_per_core", 200.0}, {"cores", cores},
                                {"microarchitecture", "Zen 3"}, {"simd_lanes_fp32", 16}, {"fma_units", 2}, {"fma_lanes_fp32", 8},
                                {"clock_hz", 1e9}, {"clock_kind", "base"}, {"estimated", true},
                                {"model", "m"}, {"sources", {{"simd_lanes", "a"}, {"fma_units", "b"}, {"clock", "c"}}}}}};
}

// Per-window figures as the sampler's record holds them: the steps window (10 s) carries the
// headline figures, every other window 1 s, 1 J.
json rank_windows(double busy_cores, double amu, double rss) {
  json w = json::object();
  for (const char* name : kWindowNames) w[name] = {{"seconds", 1.0}, {"rss_mean_bytes", rss}, {"amu", amu}, {"busy_cores", busy_cores}};
  w["steps"]["seconds"] = 10.0;
  return w;
}

json energy_windows(double steps_joules) {
  json w = json::object();
  for (const char* name : kWindowNames) w[name] = {{"seconds", 1.0}, {"joules", 1.0}, {"aec_w", 1.0}};
  w["steps"] = {{"seconds", 10.0}, {"joules", steps_joules}, {"aec_w", steps_joules / 10}};
  return w;
}

json energy(double joules, bool estimated) {
  return {{"sources", {estimated ? "estimate" : "rapl"}}, {"estimated", estimated}, {"period_s", 0.1}, {"seconds", 10.0},
          {"joules", joules}, {"aec_w", joules / 10}, {"domains", json::array()}, {"window", "steps"},
          {"partial", false}, {"coverage", {{"cpu", estimated ? "modelled" : "measured"}, {"cpu_packages", 1},
                                            {"cpu_packages_measured", estimated ? json(nullptr) : json(1)},
                                            {"gpus", 0}, {"gpus_measured", 0}, {"missing", json::array()}}},
          {"windows", energy_windows(joules)}, {"whole_run", {{"seconds", 15.0}, {"joules", joules + 5}, {"aec_w", (joules + 5) / 15}}},
          {"model", estimated ? json{{"formula", "f"}, {"p_idle_w", 1}, {"p_max_w", 2}, {"constants_source", "c"},
                                     {"utilization_source", "u"}}
                              : json(nullptr)},
          {"fallbacks", json::array()}, {"failed_reads", 0}, {"last_error", ""},
          {"samples", {{"t_s", {10.0}}, {"watts", {joules / 10}}}}};
}

// Rank r of 4 on two nodes (ranks 0-1 on node 0, bound to 2 cores each; ranks 2-3 on node 2,
// unbound on its 4 cores).
json record(int r, std::vector<double> steps, double busy_cores) {
  const int node = r < 2 ? 0 : 2;
  // per step: GEMM 0.25 s, communication as comm_seconds, the rest elementwise; other phases 0
  const std::vector<double> gemm(steps.size(), 0.25), none(steps.size(), 0.0);
  std::vector<double> comm(steps.size()), elementwise(steps.size());
  for (std::size_t s = 0; s < steps.size(); s++) {
    comm[s] = s == 0 ? 0.0 : 0.5;
    elementwise[s] = steps[s] - 0.25 - comm[s];
  }
  const json phases = {{"gemm", gemm}, {"attention", none}, {"elementwise", elementwise}, {"loss", none},
                       {"optimizer", none}, {"communication", comm}, {"other", none}};
  const bool leader = r == node;
  const std::vector<int> cores = node == 0 ? std::vector<int>{2 * r, 2 * r + 1} : std::vector<int>{0, 1, 2, 3};
  json placement = {{"policy", "compact"}, {"binding", "set"}, {"pus", "0-1"}, {"cores", "0-1"}, {"core_indexes", cores},
                    {"packages", {0}}, {"numa_nodes", {0}}, {"gpu", nullptr}, {"blas_threads", 2},
                    {"blas_threads_source", "s"}, {"threads_bound", {{"inside", 3}, {"total", 3}}}, {"oversubscribed", false}};
  json sampling = {{"busy_cores", busy_cores}, {"amu", 0.1 * (r + 1)}, {"rss_mean_bytes", 100.0 * (r + 1)},
                   {"rss_peak_bytes", 200 * (r + 1)}, {"tracked_peak_bytes", 50}, {"available_bytes", 1000},
                   {"available_source", "test"}, {"window", "steps"},
                   {"windows", rank_windows(busy_cores, 0.1 * (r + 1), 100.0 * (r + 1))}, {"series", {{"t_s", {0.0}}, {"rss_bytes", {1}}, {"tracked_bytes", {0}}, {"cpu_s", {0.0}}}},
                   {"energy", leader ? energy(node == 0 ? 100 : 50, node == 2) : json(nullptr)}};
  return {{"rank", r}, {"host", node == 0 ? "a" : "b"}, {"node", node}, {"local_rank", r % 2}, {"local_size", 2},
          {"placement", placement}, {"sampling", sampling}, {"node_info", leader ? node_info(4) : json(nullptr)},
          {"rss_hwm_bytes", 300}, {"step_seconds", steps}, {"comm_seconds", comm}, {"phase_seconds", phases},
          {"wall_seconds", 10.0},
          {"dp_rank", r}, {"tp_rank", 0}, {"ep_rank", 0}, {"local_params", 4}, {"tp_seconds", {0.0, 0.0, 0.0}},
          {"ep_seconds", {0.0, 0.0, 0.0}},
          {"dp_seconds", {0.0, 0.5, 0.5}}, {"param_fingerprint", "f"}, {"replicated_fingerprint", "g"},
          {"arena_bytes", {{"parameters", 4}}}};
}

struct Fixture {
  RunConfig run;
  RunRecord root;
  std::vector<json> ranks;
  Fixture() {
    run.name = "r";
    run.training.steps = 3;
    run.training.warmup_iters = 1;
    run.training.batch_size = 8;
    run.model.seq_len = 4;
    run.as_json = {{"name", "r"}, {"training", {{"steps", 3}}}};
    root.num_params = 1000;
    root.trainable_params = 1000;
    root.active_params_per_token = 1000;
    root.param_checksums = {{"w", {1.0, 2.0, 0.5}}};
    // 8 sequences of 4 tokens; the last two steps as if packed instruction samples were masked
    root.steps = {StepSample{3.0, 8, 32}, StepSample{2.5, 10, 20}, StepSample{2.0, 6, 12}};
    root.evals = {EvalSample{3, 2.0}};
    // First iteration is warm-up (9 s everywhere); then ranks take 1/2/1+3/1 s.
    ranks = {record(0, {9, 1, 1}, 1.0), record(1, {9, 2, 2}, 2.0), record(2, {9, 1, 3}, 1.0), record(3, {9, 1, 1}, 2.0)};
  }
};

TEST(AcrossRanks, MinMeanMaxSumImbalance) {
  const json a = across_ranks({1, 2, 3, 6});
  EXPECT_EQ(a["min"], 1.0);
  EXPECT_EQ(a["mean"], 3.0);
  EXPECT_EQ(a["max"], 6.0);
  EXPECT_EQ(a["sum"], 12.0);
  EXPECT_EQ(a["imbalance"], 2.0);
  EXPECT_TRUE(across_ranks({}).is_null());
  EXPECT_EQ(across_ranks({0, 0})["imbalance"], 0.0);
}

TEST(RankPeaks, ShareOfTheNodesPerCorePeak) {
  const Fixture f;
  const RankPeaks p = rank_peaks(f.ranks);
  EXPECT_EQ(p.core_share, (std::vector<double>{2, 2, 2, 2}));  // node 2: 4 shared cores ÷ 2 ranks
  EXPECT_EQ(p.measured, (std::vector<double>{200, 200, 200, 200}));  // 400 FLOP/s ÷ 4 cores × 2
  EXPECT_EQ(p.theoretical, (std::vector<double>{400, 400, 400, 400}));
}

// Each rank's phases: the mean over its measured steps (the warm-up step excluded).
TEST(RunReport, PhaseSecondsAreEachRanksMeansOverTheMeasuredSteps) {
  const Fixture f;
  const json r = build_run_report(f.run, 0, f.root, f.ranks);
  const json& rank2 = r["ranks"][2]["phase_seconds"];  // steps 1 and 3 s, communication 0.5 s each
  EXPECT_DOUBLE_EQ(rank2["gemm"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(rank2["communication"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(rank2["elementwise"].get<double>(), (0.25 + 2.25) / 2);
  double sum = 0;
  for (const auto& [phase, seconds] : rank2.items()) sum += seconds.get<double>();
  EXPECT_DOUBLE_EQ(sum, r["ranks"][2]["step_seconds"]["mean"].get<double>());
}

// A rank's memory estimate (cli/estimate_command.hpp) reaches its row; a record without one (written
// before it) gives null.
TEST(RunReport, MemoryEstimateReachesTheRankRow) {
  Fixture f;
  f.ranks[1]["memory_estimate"] = {{"weights", 4}, {"total", 40}};
  const json r = build_run_report(f.run, 0, f.root, f.ranks);
  EXPECT_EQ(r["ranks"][1]["memory_estimate"]["total"], 40);
  EXPECT_TRUE(r["ranks"][0]["memory_estimate"].is_null());
}

TEST(RunReport, LatencyThroughputPeaksAndPcu) {
  const Fixture f;
  const json r = build_run_report(f.run, 0, f.root, f.ranks);
  const json& lat = r["latency"];
  EXPECT_EQ(lat["measured_iters"], 2);
  EXPECT_DOUBLE_EQ(lat["step"]["mean"].get<double>(), 2.5);  // max over ranks: 2 then 3
  EXPECT_DOUBLE_EQ(lat["step"]["max"].get<double>(), 3.0);
  EXPECT_DOUBLE_EQ(lat["step"]["imbalance"].get<double>(), 2.0 / 1.5);  // rank means 1, 2, 2, 1
  EXPECT_DOUBLE_EQ(lat["communication"]["mean"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(lat["communication"]["imbalance"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(lat["compute"]["max"].get<double>(), 2.5);  // rank 2's 3 s step minus 0.5 s
  // Pooled compute samples 0.5 0.5 1.5 1.5 0.5 2.5 0.5 0.5: p95 by linear interpolation.
  EXPECT_DOUBLE_EQ(lat["compute"]["p95"].get<double>(), 1.5 + 0.65 * 1.0);
  EXPECT_DOUBLE_EQ(r["throughput"]["tokens_per_s"].get<double>(), 32 / 2.5);
  EXPECT_DOUBLE_EQ(r["throughput"]["tokens_per_s_per_rank"]["sum"].get<double>(), 8 + 4 + 4 + 8);
  // ST: the measured steps' samples (10 + 6) over their time (2 + 3 s), per parameter (1000)
  EXPECT_DOUBLE_EQ(r["throughput"]["samples_per_s"].get<double>(), 16 / 5.0);
  EXPECT_DOUBLE_EQ(r["throughput"]["st_samples_per_param_per_s"].get<double>(), 16 / 5.0 / 1000);
  EXPECT_DOUBLE_EQ(r["throughput"]["loss_tokens_per_s"].get<double>(), 32 / 5.0);
  EXPECT_EQ(r["samples_per_step"], json({8, 10, 6}));
  EXPECT_EQ(r["loss_tokens_per_step"], json({32, 20, 12}));
  EXPECT_DOUBLE_EQ(r["compute"]["measured_peak_flops_per_s"].get<double>(), 800);
  EXPECT_DOUBLE_EQ(r["compute"]["theoretical_peak_flops_per_s"].get<double>(), 1600);
  EXPECT_DOUBLE_EQ(r["ranks"][1]["pcu_busy_fraction"].get<double>(), 1.0);  // 2 busy cores of 2
  EXPECT_DOUBLE_EQ(r["compute"]["pcu_busy_fraction"]["mean"].get<double>(), 0.75);
  EXPECT_DOUBLE_EQ(r["memory"]["amu"]["mean"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(r["memory"]["rss_peak_bytes"]["max"].get<double>(), 800);
  EXPECT_DOUBLE_EQ(r["memory"]["rss_mean_bytes"]["imbalance"].get<double>(), 400 / 250.0);
}

TEST(RunReport, NodeEnergyRowsAndClusterSums) {
  const Fixture f;
  const json r = build_run_report(f.run, 0, f.root, f.ranks);
  ASSERT_EQ(r["nodes"].size(), 2u);
  const json& n0 = r["nodes"][0];
  EXPECT_EQ(n0["ranks"], json({0, 1}));
  EXPECT_EQ(n0["cores_in_use"], 4.0);
  const double node_tokens = 2 * 8 * 2;  // 2 ranks × 8 tokens a step × 2 measured steps (3, 1 warm-up)
  EXPECT_DOUBLE_EQ(n0["energy"]["j_per_token"].get<double>(), 100 / node_tokens);
  EXPECT_FALSE(n0["energy"].contains("samples"));  // raw series live under samples.power_per_node
  const json& e = r["energy"];
  EXPECT_DOUBLE_EQ(e["joules"].get<double>(), 150);
  EXPECT_DOUBLE_EQ(e["aec_w"].get<double>(), 15);
  EXPECT_DOUBLE_EQ(e["j_per_token"].get<double>(), 150 / (2 * node_tokens));
  EXPECT_TRUE(e["estimated"].get<bool>());  // node 2 had no counter
  EXPECT_TRUE(e["complete"].get<bool>());
  EXPECT_EQ(r["samples"]["power_per_node"].size(), 2u);
}

// The header ReportWriter takes, for the fixture's two nodes.
json report_header_of(const Fixture& f) {
  json nodes = json::array();
  for (const int leader : {0, 2}) {
    json n = f.ranks[leader]["node_info"];
    n["node"] = leader;
    nodes.push_back(n);
  }
  return {{"schema_version", 3},
          {"job", {{"name", "t"}, {"description", ""}, {"file", "t.json"}}},
          {"provenance", provenance({"test"})},
          {"system", system_info()},
          {"world", {{"ranks", 4}, {"hosts", {"a", "b"}}, {"rank_hosts", {"a", "a", "b", "b"}}}},
          {"topology", {{"nodes", nodes}}}};
}

TEST(RunReport, EnergyLeavingOutADeviceIsLabelledPartial) {
  Fixture f;
  EXPECT_FALSE(build_run_report(f.run, 0, f.root, f.ranks)["energy"]["partial"].get<bool>());
  json& e = f.ranks[2]["sampling"]["energy"];  // node 2's
  e["partial"] = true;
  e["coverage"]["missing"] = {"1 of the node's 2 CPU packages: no counter for them"};
  const json r = build_run_report(f.run, 0, f.root, f.ranks);
  EXPECT_TRUE(r["energy"]["partial"].get<bool>());
  EXPECT_TRUE(r["energy"]["complete"].get<bool>());  // every node has a figure, one of them partial
  json report = report_header_of(f);
  report["runs"] = {r};
  const std::string md = render_markdown(report);
  EXPECT_NE(md.find("**partial**, leaves out: 1 of the node's 2 CPU packages: no counter for them;"), std::string::npos) << md;
  EXPECT_NE(md.find("(est.) (partial)"), std::string::npos);  // the summary table's J/token and AEC cells
}

TEST(RunReport, WindowsSummedOverNodesAndAcrossRanks) {
  const Fixture f;
  const json r = build_run_report(f.run, 0, f.root, f.ranks);
  const json& w = r["windows"];
  ASSERT_EQ(w.size(), std::size_t(kWindows));
  EXPECT_DOUBLE_EQ(w["steps"]["joules"].get<double>(), 150);  // = the headline energy
  EXPECT_DOUBLE_EQ(w["steps"]["joules"].get<double>(), r["energy"]["joules"].get<double>());
  EXPECT_DOUBLE_EQ(w["evaluation"]["joules"].get<double>(), 2);  // 1 J on each of two nodes
  EXPECT_DOUBLE_EQ(w["evaluation"]["seconds"].get<double>(), 1);
  EXPECT_DOUBLE_EQ(w["setup"]["aec_w"].get<double>(), 2);
  EXPECT_DOUBLE_EQ(w["steps"]["amu"]["max"].get<double>(), 0.4);
  EXPECT_EQ(r["energy"]["window"], "steps");
}

TEST(RunReport, SamplingOffLeavesSampledFiguresNull) {
  Fixture f;
  for (json& r : f.ranks) r["sampling"] = nullptr;
  const json r = build_run_report(f.run, 0, f.root, f.ranks);
  EXPECT_FALSE(r["memory"]["sampled"].get<bool>());
  EXPECT_TRUE(r["memory"]["amu"].is_null());
  EXPECT_TRUE(r["ranks"][0]["pcu_busy_fraction"].is_null());
  EXPECT_TRUE(r["energy"]["joules"].is_null());
  EXPECT_FALSE(r["energy"]["sampled"].get<bool>());
  EXPECT_TRUE(r["nodes"][0]["energy"].is_null());
}

TEST(Csv, RunNodeAndRankRows) {
  const Fixture f;
  json report = {{"runs", {build_run_report(f.run, 0, f.root, f.ranks)}}};
  const std::string csv = render_csv(report);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 1 + 1 + 2 + 4);  // header, run, 2 nodes, 4 ranks
  EXPECT_TRUE(csv.starts_with("scope,run,node,rank,host,step_s_mean,step_s_p95,"));
  EXPECT_NE(csv.find("\nnode,r,2,,b,"), std::string::npos);
  EXPECT_NE(csv.find("\nrank,r,0,1,a,2.0,"), std::string::npos);  // rank 1's mean step: 2 s
}

// Sets node peaks (FLOP/s of the whole node) in every leader record of the fixture.
void set_peaks(Fixture& f, double measured, double theoretical) {
  for (json& r : f.ranks) {
    if (r["node_info"].is_null()) continue;
    r["node_info"]["measured_peak"]["flops_per_s"] = measured;
    r["node_info"]["theoretical_peak"]["flops_per_s"] = theoretical;
    r["node_info"]["theoretical_peak"]["flops_per_s_per_core"] = theoretical / 4;
  }
}

// Every utilisation and efficiency anywhere in a run entry, with its JSON pointer.
void collect_ratios(const json& j, const std::string& at, std::vector<std::pair<std::string, double>>& out) {
  static const std::set<std::string> kRatios = {"mfu", "gemm_relative_efficiency", "pcu_busy_fraction"};
  if (!j.is_object() && !j.is_array()) return;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string key = j.is_object() ? it.key() : std::to_string(std::distance(j.begin(), it));
    const std::string ptr = at + "/" + key;
    if (j.is_object() && kRatios.contains(key) && it->is_number()) out.emplace_back(ptr, it->get<double>());
    if (j.is_object() && key == "pcu_busy_fraction" && it->is_object()) {
      for (const char* k : {"min", "mean", "max"}) out.emplace_back(ptr + "/" + k, (*it)[k].get<double>());
    }
    collect_ratios(*it, ptr, out);
  }
}

// The quickstart once showed mfu_vs_measured_peak = 1.18 (calibration on a busy machine). However
// wrong the peaks or the sampled CPU time are, no figure above 1 reaches the report; each one
// withheld is explained in compute.flags, and an implausible calibration is flagged.
TEST(RunReport, NoUtilisationOrEfficiencyAboveOne) {
  Rng rng(3);
  int withheld = 0, shown = 0;
  for (int trial = 0; trial < 200; trial++) {
    Fixture f;
    const double model_flops = 32 / 2.5 * training_flops_per_token(f.run.model);
    set_peaks(f, model_flops * (0.2 + 2 * rng.uniform()), model_flops * (0.2 + 4 * rng.uniform()));
    for (json& r : f.ranks) r["sampling"]["busy_cores"] = 4 * rng.uniform();  // core share 2: up to 2× over
    const json run = build_run_report(f.run, 0, f.root, f.ranks);
    std::vector<std::pair<std::string, double>> ratios;
    collect_ratios(run, "", ratios);
    for (const auto& [ptr, v] : ratios) {
      EXPECT_GE(v, 0.0) << ptr;
      EXPECT_LE(v, 1.0) << ptr;
    }
    shown += int(ratios.size());
    for (const char* k : {"mfu", "gemm_relative_efficiency"}) {
      if (run["compute"][k].is_null()) {
        withheld++;
        EXPECT_FALSE(run["compute"]["flags"].empty());
      }
    }
  }
  EXPECT_GT(withheld, 20);  // the trials did produce ratios above 1 ...
  EXPECT_GT(shown, 1000);   // ... and plenty below it
}

TEST(RunReport, CalibrationCheckedAgainstTheTheoreticalPeak) {
  Fixture f;
  set_peaks(f, 10.0, 1000.0);  // 1 % of the theoretical peak: a busy machine during calibration
  json run = build_run_report(f.run, 0, f.root, f.ranks);
  EXPECT_FALSE(run["compute"]["calibration_plausible"].get<bool>());
  EXPECT_EQ(run["nodes"][0]["calibration_check"]["measured_over_theoretical"].get<double>(), 0.01);
  set_peaks(f, 900.0, 1000.0);
  run = build_run_report(f.run, 0, f.root, f.ranks);
  EXPECT_TRUE(run["compute"]["calibration_plausible"].get<bool>());
  set_peaks(f, 1100.0, 1000.0);  // faster than the theoretical peak: the clock or the table is wrong
  run = build_run_report(f.run, 0, f.root, f.ranks);
  EXPECT_FALSE(run["compute"]["calibration_plausible"].get<bool>());
  EXPECT_NE(run["nodes"][0]["calibration_check"]["note"].get<std::string>().find("faster"), std::string::npos);
}

TEST(Downsample, AtMostMaxPointsKeepingPeaksEndsAndMeans) {
  json v = json::array(), t = json::array();
  for (int i = 0; i < 36000; i++) {  // an hour at 100 ms
    v.push_back(i == 12345 ? 1e9 : double(i % 7));
    t.push_back(0.1 * i);
  }
  const json peak = downsample(v, Keep::Max), last = downsample(t, Keep::Last), mean = downsample(v, Keep::Mean);
  EXPECT_LE(peak.size(), kMaxSeriesPoints);
  EXPECT_GT(peak.size(), kMaxSeriesPoints / 2);
  EXPECT_EQ(*std::max_element(peak.begin(), peak.end()), 1e9);  // the one-sample spike survives
  EXPECT_EQ(last.back(), t.back());
  double sum = 0;
  for (const json& x : v) sum += x.get<double>();
  double bucket_sum = 0;
  const std::size_t bucket = (v.size() + kMaxSeriesPoints - 1) / kMaxSeriesPoints;
  for (std::size_t b = 0; b < mean.size(); b++) bucket_sum += mean[b].get<double>() * double(std::min(bucket, v.size() - b * bucket));
  EXPECT_NEAR(bucket_sum, sum, 1e-6 * sum);  // means weighted by bucket sizes keep the total
  EXPECT_EQ(downsample(json::array({1, 2, 3}), Keep::Max), json::array({1, 2, 3}));  // short: untouched
}

// `ranks` ranks, two per node, each with `samples` sampler points and `steps` steps.
Fixture scaled(int ranks, int samples, int steps) {
  Fixture f;
  f.run.training.steps = steps;
  f.root.steps.assign(std::size_t(steps), StepSample{2.0, 8, 32});
  std::vector<double> step_s(std::size_t(steps), 1.0), zeros(std::size_t(steps), 0.0);
  json series = {{"t_s", json::array()}, {"rss_bytes", json::array()}, {"tracked_bytes", json::array()}, {"cpu_s", json::array()}};
  for (int i = 0; i < samples; i++) {
    series["t_s"].push_back(0.1 * i);
    series["rss_bytes"].push_back(1000000 + i);
    series["tracked_bytes"].push_back(500000);
    series["cpu_s"].push_back(0.1 * i);
  }
  json power = {{"t_s", series["t_s"]}, {"watts", json::array()}};
  for (int i = 0; i < samples; i++) power["watts"].push_back(100.0 + i % 3);
  f.ranks.clear();
  for (int r = 0; r < ranks; r++) {
    json rec = record(r % 2, step_s, 1.0);
    rec["rank"] = r;
    rec["dp_rank"] = r;
    rec["node"] = r - r % 2;
    rec["host"] = "node" + std::to_string(r / 2);
    for (const char* k : {"comm_seconds", "tp_seconds", "ep_seconds", "dp_seconds"}) rec[k] = zeros;
    rec["sampling"]["series"] = series;
    if (r % 2 == 0) rec["sampling"]["energy"]["samples"] = power;
    f.ranks.push_back(rec);
  }
  return f;
}

// The per-rank part of report.json grows with ranks, never with the sampled time: 1,000 ranks cost
// the same whether they were sampled for a minute or an hour (36,000 samples at 100 ms). (The
// run-wide per-step curves, loss and learning rate, keep one value per step.) Printed for the docs.
TEST(RunReport, SizeBoundedWhateverTheRunLength) {
  const auto size = [](int ranks, int samples, int steps) {
    const Fixture f = scaled(ranks, samples, steps);
    return build_run_report(f.run, 0, f.root, f.ranks).dump().size();
  };
  const Fixture hour = scaled(50, 36000, 300);
  const json run = build_run_report(hour.run, 0, hour.root, hour.ranks);
  for (const json& rank : run["samples"]["sampler_per_rank"]) EXPECT_LE(rank["t_s"].size(), kMaxSeriesPoints);
  for (const json& node : run["samples"]["power_per_node"]) EXPECT_LE(node["samples"]["watts"].size(), kMaxSeriesPoints);
  // Bytes differ a little (a bucket's mean has more digits than a raw sample), counts do not.
  const std::size_t short_run = size(50, 300, 300), long_run = run.dump().size();
  EXPECT_LT(double(long_run), 1.25 * double(short_run));
  const std::size_t thousand = size(1000, 600, 300);  // > 128 samples: already cut, digits and all
  std::printf("run entry at 1000 ranks: %.1f MB (any run length)\n", double(thousand) / 1e6);
  EXPECT_LT(thousand, std::size_t(32) << 20);
}

// A full report.json through ReportWriter, checked against docs/report.schema.json.
TEST(Schema, WrittenReportsValidate) {
  const Fixture f;
  const json header = report_header_of(f);
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("ellm_schema_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  {
    ReportWriter w(dir, header);
    json run = build_run_report(f.run, 0, f.root, f.ranks);
    w.add_run(run);
    Fixture off;
    for (json& r : off.ranks) r["sampling"] = nullptr;
    w.add_run(build_run_report(off.run, 1, off.root, off.ranks));
  }
  const std::string check = "/usr/bin/python3 " + std::string(ELLM_SOURCE_DIR) + "/scripts/validate_report.py " +
                            (dir / "report.json").string() + " " + (dir / "runs.jsonl").string();
  EXPECT_EQ(std::system(check.c_str()), 0) << check;
  // The schema is not vacuous: the same report without its energy figures fails.
  json broken = json::parse(std::ifstream(dir / "report.json"));
  broken["runs"][0]["energy"].erase("joules");
  std::ofstream(dir / "broken.json") << broken.dump();
  const std::string bad = "/usr/bin/python3 " + std::string(ELLM_SOURCE_DIR) + "/scripts/validate_report.py " +
                          (dir / "broken.json").string() + " > /dev/null";
  EXPECT_NE(std::system(bad.c_str()), 0);
  std::filesystem::remove_all(dir);
}

TEST(Compare, EveryRunOfEveryReportWithRatiosAgainstTheFirst) {
  const Fixture f;
  const json run = build_run_report(f.run, 0, f.root, f.ranks);
  json other = run;
  other["throughput"]["tokens_per_s"] = run["throughput"]["tokens_per_s"].get<double>() * 2;
  json renamed = run;
  renamed["name"] = "only-here";
  const json a = {{"world", {{"ranks", 4}, {"hosts", {"a", "b"}}}}, {"runs", {run}}};
  const json b = {{"world", {{"ranks", 8}, {"hosts", {"c"}}}}, {"runs", {other, renamed}}};
  const json c = compare_reports({{"dirA", a}, {"dirB", b}});
  const json& rows = c["comparison"]["rows"];
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1]["world_ranks"], 8);
  EXPECT_EQ(rows[1]["hosts"], json({"c"}));
  EXPECT_DOUBLE_EQ(rows[0]["ratios"]["tokens_per_s"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(rows[1]["ratios"]["tokens_per_s"].get<double>(), 2.0);
  EXPECT_EQ(rows[1]["baseline"], "dirA:r");
  EXPECT_EQ(rows[2]["baseline"], "dirA:r");  // no run of that name in the first report
  const Table md = comparison_table(c, false);
  EXPECT_EQ(md.rows.size(), 3u);
  EXPECT_EQ(md.rows[1][2], "c");
  EXPECT_EQ(md.rows[1].back(), "1.000×");  // val perplexity ratio
}

}  // namespace
}  // namespace ellm
