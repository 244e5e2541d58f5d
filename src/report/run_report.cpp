#include "report/run_report.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "metrics/flops.hpp"
#include "metrics/stats.hpp"

namespace ellm {
namespace {

using nlohmann::json;

std::vector<double> measured(const std::vector<double>& all, int warmup) {
  return {all.begin() + std::min<std::size_t>(warmup, all.size()), all.end()};
}

// min / mean / max / sum across ranks of one number per rank.
json across_ranks(const std::vector<double>& v) {
  const double sum = std::accumulate(v.begin(), v.end(), 0.0);
  const double mean = sum / v.size();
  const double max = *std::max_element(v.begin(), v.end());
  return {{"min", *std::min_element(v.begin(), v.end())}, {"mean", mean}, {"max", max},
          {"sum", sum}, {"imbalance", mean > 0 ? max / mean : 0.0}};
}

}  // namespace

json rank_record(const RunRecord& rec, const RankContext& ctx) {
  std::vector<double> step_s, comm_s;
  for (const StepSample& s : rec.steps) {
    step_s.push_back(s.seconds);
    comm_s.push_back(s.comm_seconds);
  }
  return {{"rank", ctx.rank},
          {"host", ctx.host},
          {"blas_threads", ctx.blas_threads},
          {"sgemm_peak_flops_per_s", ctx.sgemm_peak_flops},
          {"step_seconds", step_s},
          {"comm_seconds", comm_s},
          {"wall_seconds", rec.wall_seconds},
          {"param_fingerprint", rec.param_fingerprint},
          {"rss_peak_bytes", rec.rss_peak_bytes},
          {"rss_mean_bytes", rec.rss_mean_bytes},
          {"arena_bytes", rec.arena_bytes}};
}

json build_run_report(const RunConfig& run, int index, const RunRecord& root,
                      const std::vector<json>& ranks) {
  const TrainingConfig& t = run.training;
  const int warmup = t.warmup_iters;
  const int dp = int(ranks.size());
  const double tokens_per_step = double(t.batch_size) * run.model.seq_len;
  const double flops_per_token = training_flops_per_token(run.model);

  // A step of the cluster ends when its slowest rank ends: per iteration, the max over ranks.
  std::vector<double> cluster_step(t.steps, 0.0);
  std::vector<double> rank_tokens_s, rank_flops_s, rank_peak, rank_rss_peak, rank_rss_mean,
      rank_step_mean, rank_compute_mean, rank_comm_mean;
  json rank_rows = json::array();
  bool replicas_identical = true;  // data parallelism must keep every replica bit-identical
  json raw_steps = json::array(), raw_comms = json::array();  // per rank, every iteration
  for (const json& r : ranks) {
    raw_steps.push_back(r["step_seconds"]);
    raw_comms.push_back(r["comm_seconds"]);
    const auto steps = r["step_seconds"].get<std::vector<double>>();
    const auto comms = r["comm_seconds"].get<std::vector<double>>();
    for (int i = 0; i < t.steps; i++) cluster_step[i] = std::max(cluster_step[i], steps[i]);
    std::vector<double> compute(steps.size());
    for (std::size_t i = 0; i < steps.size(); i++) compute[i] = steps[i] - comms[i];
    const Summary st = summarize(measured(steps, warmup));
    const Summary cm = summarize(measured(comms, warmup));
    const Summary cp = summarize(measured(compute, warmup));
    const double tok_s = tokens_per_step / dp / st.mean;
    const double peak = r["sgemm_peak_flops_per_s"].get<double>();
    rank_tokens_s.push_back(tok_s);
    rank_flops_s.push_back(tok_s * flops_per_token);
    rank_peak.push_back(peak);
    rank_rss_peak.push_back(r["rss_peak_bytes"].get<double>());
    rank_rss_mean.push_back(r["rss_mean_bytes"].get<double>());
    rank_step_mean.push_back(st.mean);
    rank_compute_mean.push_back(cp.mean);
    rank_comm_mean.push_back(cm.mean);
    rank_rows.push_back({{"rank", r["rank"]},
                         {"host", r["host"]},
                         {"blas_threads", r["blas_threads"]},
                         {"step_seconds", to_json(st)},
                         {"compute_seconds", to_json(cp)},
                         {"comm_seconds", to_json(cm)},
                         {"tokens_per_s", tok_s},
                         {"tt_tokens_per_param_per_s", tok_s / double(root.num_params)},
                         {"model_flops_per_s", tok_s * flops_per_token},
                         {"sgemm_peak_flops_per_s", peak},
                         {"mfu_vs_measured_peak", peak > 0 ? tok_s * flops_per_token / peak : 0.0},
                         {"rss_peak_bytes", r["rss_peak_bytes"]},
                         {"rss_mean_bytes", r["rss_mean_bytes"]},
                         {"arena_bytes", r["arena_bytes"]},
                         {"param_fingerprint", r["param_fingerprint"]}});
    replicas_identical = replicas_identical && r["param_fingerprint"] == ranks[0]["param_fingerprint"];
  }

  const Summary step = summarize(measured(cluster_step, warmup));
  const double tokens_s = tokens_per_step / step.mean;
  const double peak_sum = std::accumulate(rank_peak.begin(), rank_peak.end(), 0.0);
  const double compute_mean = across_ranks(rank_compute_mean)["mean"];
  const double comm_mean = across_ranks(rank_comm_mean)["mean"];

  json loss = json::array();
  for (const StepSample& s : root.steps) loss.push_back(s.loss);
  json lr = json::array(), grad_norm = json::array();
  for (const StepSample& s : root.steps) {
    lr.push_back(s.lr);
    grad_norm.push_back(s.grad_norm);
  }
  json validation = json::array();
  for (const EvalSample& e : root.evals) {
    validation.push_back({{"step", e.step}, {"loss", e.loss}, {"perplexity", std::exp(e.loss)}});
  }
  const EvalSample& final_eval = root.evals.back();

  return {
      {"index", index},
      {"name", run.name},
      {"status", "ok"},
      {"config", run.as_json},
      {"model",
       {{"parameters", root.num_params},
        {"matmul_weights", matmul_weights(run.model)},
        {"training_flops_per_token", flops_per_token},
        {"flops_convention", "docs/ARCHITECTURE.md#flops-convention"}}},
      {"quality",
       {{"train_loss_first", root.steps.front().loss},
        {"train_loss_final", root.steps.back().loss},
        {"val_loss_final", final_eval.loss},
        {"val_perplexity_final", std::exp(final_eval.loss)}}},
      {"loss_per_step", loss},
      {"lr_per_step", lr},
      {"grad_norm_per_step", grad_norm},
      {"validation", validation},
      {"latency",
       {{"unit", "s/iteration"},
        {"warmup_iters_excluded", std::min(warmup, t.steps)},
        {"measured_iters", step.count},
        {"step", to_json(step)},
        {"compute_mean", compute_mean},
        {"communication_mean", comm_mean},
        {"communication_share", step.mean > 0 ? comm_mean / step.mean : 0.0},
        {"note", "step = max over ranks per iteration; compute/communication = mean over ranks"}}},
      {"throughput",
       {{"tokens_per_s", tokens_s},
        {"tt_tokens_per_param_per_s", tokens_s / double(root.num_params)},
        {"tokens_per_s_per_rank", across_ranks(rank_tokens_s)}}},
      {"compute",
       {{"model_flops_per_s", tokens_s * flops_per_token},
        {"sgemm_peak_flops_per_s", peak_sum},
        {"mfu_vs_measured_peak", peak_sum > 0 ? tokens_s * flops_per_token / peak_sum : 0.0},
        {"peak_source", "measured: 1024³ sgemm on each rank's BLAS threads at job start, summed"}}},
      {"memory",
       {{"rss_peak_bytes", across_ranks(rank_rss_peak)},
        {"rss_mean_bytes", across_ranks(rank_rss_mean)},
        {"sampling", "resident set read from /proc/self/statm after every step"}}},
      {"wall_seconds", root.wall_seconds},
      {"replicas_identical", replicas_identical},
      {"ranks", rank_rows},
      {"samples", {{"step_seconds_per_rank", raw_steps}, {"comm_seconds_per_rank", raw_comms}}},
  };
}

}  // namespace ellm
