#include "report/run_report.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include "metrics/flops.hpp"
#include "metrics/stats.hpp"
#include "report/aggregate.hpp"
#include "util/phases.hpp"

namespace ellm {
namespace {

using nlohmann::json;

std::vector<double> measured(const std::vector<double>& all, int warmup) {
  return {all.begin() + std::min<std::size_t>(warmup, all.size()), all.end()};
}

// A latency component: the percentiles of every rank's measured iterations pooled, and the
// imbalance of the ranks' means (max ÷ mean).
json component(const std::vector<double>& pooled, const std::vector<double>& rank_means) {
  json j = to_json(summarize(pooled));
  j["imbalance"] = across_ranks(rank_means)["imbalance"];
  return j;
}

json curve(const std::vector<StepSample>& steps, double StepSample::*field) {
  json out = json::array();
  for (const StepSample& s : steps) out.push_back(s.*field);
  return out;
}

json counts(const std::vector<StepSample>& steps, std::int64_t StepSample::*field) {
  json out = json::array();
  for (const StepSample& s : steps) out.push_back(s.*field);
  return out;
}

// {phase: [seconds per step]} (util/phases.hpp)
json phase_series(const std::vector<StepSample>& steps) {
  json out = json::object();
  for (int i = 0; i < kPhases; i++) {
    json& series = out[phase_name(Phase(i))] = json::array();
    for (const StepSample& s : steps) series.push_back(s.phases.seconds[i]);
  }
  return out;
}

// {phase: mean seconds per measured step} of a rank record's phase_seconds.
json phase_means(const json& phase_seconds, int warmup) {
  json out = json::object();
  for (const auto& [phase, series] : phase_seconds.items())
    out[phase] = summarize(measured(series.get<std::vector<double>>(), warmup)).mean;
  return out;
}

}  // namespace

json rank_record(const RunRecord& rec, const RankContext& ctx) {
  std::vector<double> step_s, comm_s, tp_s, ep_s, dp_s;
  for (const StepSample& s : rec.steps) {
    step_s.push_back(s.seconds);
    comm_s.push_back(s.comm_seconds);
    tp_s.push_back(s.tp_seconds);
    ep_s.push_back(s.ep_seconds);
    dp_s.push_back(s.dp_seconds);
  }
  return {{"rank", ctx.rank},
          {"dp_rank", rec.dp_rank},
          {"tp_rank", rec.tp_rank},
          {"ep_rank", rec.ep_rank},
          {"local_params", rec.local_params},
          {"tp_seconds", tp_s},
          {"ep_seconds", ep_s},
          {"dp_seconds", dp_s},
          {"phase_seconds", phase_series(rec.steps)},
          {"host", ctx.host},
          {"node", ctx.node},
          {"local_rank", ctx.local_rank},
          {"local_size", ctx.local_size},
          {"placement", ctx.placement},
          {"sampling", ctx.sampling},
          {"node_info", ctx.node_info},
          {"rss_hwm_bytes", ctx.rss_hwm_bytes},
          {"memory_estimate", ctx.memory_estimate},
          {"step_seconds", step_s},
          {"comm_seconds", comm_s},
          {"wall_seconds", rec.wall_seconds},
          {"param_fingerprint", rec.param_fingerprint},
          {"replicated_fingerprint", rec.replicated_fingerprint},
          {"arena_bytes", rec.arena_bytes}};
}

json build_run_report(const RunConfig& run, int index, const RunRecord& root, const std::vector<json>& ranks) {
  const TrainingConfig& t = run.training;
  const int warmup = t.warmup_iters;
  const int steps_taken = int(root.steps.size());  // training.steps, or fewer when resumed
  const int n_ranks = int(ranks.size());  // dp × tp: a rank's share is 1/n_ranks of the work
  const double tokens_per_step = double(t.batch_size) * run.model.seq_len;
  // training.steps = 0: an evaluation-only run, whose timed iterations are the validation
  // batches (forward only) and which has no training curves.
  const bool eval_only = t.steps == 0;
  const double flops_per_token = eval_only ? forward_flops_per_token(run.model) : training_flops_per_token(run.model);
  const RankPeaks peaks = rank_peaks(ranks);
  const bool sampled = std::ranges::all_of(ranks, [](const json& r) { return !r["sampling"].is_null(); });

  // A step of the cluster ends when its slowest rank ends: per iteration, the max over ranks.
  std::vector<double> cluster_step(steps_taken, 0.0), pooled_compute, pooled_comm, pooled_tp, pooled_ep,
      pooled_dp;
  std::vector<double> tp_mean, ep_mean, dp_mean;
  std::vector<double> tokens_s, flops_s, step_mean, compute_mean, comm_mean, pcu, amu, rss_mean,
      rss_peak, tracked_peak, available, rss_hwm;
  json rank_rows = json::array(), raw_steps = json::array(), raw_comms = json::array(), series = json::array();
  // Data parallelism must keep the ranks that hold the same shard bit-identical, and tensor
  // parallelism the tensors every rank of a group holds whole. Null where no two ranks share one.
  // (Expert parallelism splits the experts too: the same shard is the same tp and ep rank.)
  std::map<std::pair<int, int>, json> shard_fingerprint;
  bool replicas_identical = true, replicated_identical = true;
  json rank_flags = json::array();  // per-rank ratios above 1, summarised in compute.flags
  for (int i = 0; i < n_ranks; i++) {
    const json& r = ranks[i];
    raw_steps.push_back(downsample(r["step_seconds"], Keep::Mean));
    raw_comms.push_back(downsample(r["comm_seconds"], Keep::Mean));
    const auto steps = r["step_seconds"].get<std::vector<double>>();
    const auto comms = r["comm_seconds"].get<std::vector<double>>();
    for (int s = 0; s < steps_taken; s++) cluster_step[s] = std::max(cluster_step[s], steps[s]);
    std::vector<double> compute(steps.size());
    for (std::size_t s = 0; s < steps.size(); s++) compute[s] = steps[s] - comms[s];
    const std::vector<double> m_steps = measured(steps, warmup), m_comms = measured(comms, warmup),
                              m_compute = measured(compute, warmup);
    pooled_compute.insert(pooled_compute.end(), m_compute.begin(), m_compute.end());
    pooled_comm.insert(pooled_comm.end(), m_comms.begin(), m_comms.end());
    const std::vector<double> m_tp = measured(r["tp_seconds"].get<std::vector<double>>(), warmup),
                              m_dp = measured(r["dp_seconds"].get<std::vector<double>>(), warmup);
    pooled_tp.insert(pooled_tp.end(), m_tp.begin(), m_tp.end());
    const std::vector<double> m_ep = measured(r["ep_seconds"].get<std::vector<double>>(), warmup);
    pooled_ep.insert(pooled_ep.end(), m_ep.begin(), m_ep.end());
    ep_mean.push_back(summarize(m_ep).mean);
    pooled_dp.insert(pooled_dp.end(), m_dp.begin(), m_dp.end());
    tp_mean.push_back(summarize(m_tp).mean);
    dp_mean.push_back(summarize(m_dp).mean);
    const Summary st = summarize(m_steps), cm = summarize(m_comms), cp = summarize(m_compute);
    const double tok_s = tokens_per_step / n_ranks / st.mean;
    tokens_s.push_back(tok_s);
    flops_s.push_back(tok_s * flops_per_token);
    step_mean.push_back(st.mean);
    compute_mean.push_back(cp.mean);
    comm_mean.push_back(cm.mean);
    rss_hwm.push_back(r["rss_hwm_bytes"].get<double>());

    json memory = nullptr;
    json pcu_a = nullptr;
    if (const json& sm = r["sampling"]; !sm.is_null()) {
      // The steps window's figures: null when the run took no measured step.
      if (!sm["busy_cores"].is_null())
        pcu_a = bounded_ratio(sm["busy_cores"].get<double>(), peaks.core_share[i], "PCU", rank_flags);
      if (!pcu_a.is_null()) pcu.push_back(pcu_a.get<double>());
      if (!sm["amu"].is_null()) amu.push_back(sm["amu"].get<double>());
      if (!sm["rss_mean_bytes"].is_null()) rss_mean.push_back(sm["rss_mean_bytes"].get<double>());
      rss_peak.push_back(sm["rss_peak_bytes"].get<double>());
      tracked_peak.push_back(sm["tracked_peak_bytes"].get<double>());
      available.push_back(sm["available_bytes"].get<double>());
      memory = {{"amu", sm["amu"]}, {"rss_mean_bytes", sm["rss_mean_bytes"]}, {"rss_peak_bytes", sm["rss_peak_bytes"]},
                {"tracked_peak_bytes", sm["tracked_peak_bytes"]}, {"available_bytes", sm["available_bytes"]},
                {"available_source", sm["available_source"]}};
      series.push_back(downsample_fields(sm["series"], {{"t_s", Keep::Last},
                                                         {"rss_bytes", Keep::Max},
                                                         {"tracked_bytes", Keep::Max},
                                                         {"cpu_s", Keep::Last}}));
    } else {
      series.push_back(nullptr);
    }
    rank_rows.push_back({{"rank", r["rank"]},
                         {"dp_rank", r["dp_rank"]},
                         {"tp_rank", r["tp_rank"]},
                         {"ep_rank", r["ep_rank"]},
                         {"local_params", r["local_params"]},
                         {"host", r["host"]},
                         {"node", r["node"]},
                         {"local_rank", r["local_rank"]},
                         {"placement", r["placement"]},
                         {"core_share", peaks.core_share[i]},
                         {"step_seconds", to_json(st)},
                         {"compute_seconds", to_json(cp)},
                         {"comm_seconds", to_json(cm)},
                         {"phase_seconds", phase_means(r["phase_seconds"], warmup)},
                         {"tokens_per_s", tok_s},
                         {"tt_tokens_per_param_per_s", tok_s / double(root.num_params)},
                         {"model_flops_per_s", tok_s * flops_per_token},
                         {"measured_peak_flops_per_s", peaks.measured[i]},
                         {"theoretical_peak_flops_per_s", peaks.theoretical[i]},
                         {"mfu", bounded_ratio(tok_s * flops_per_token, peaks.theoretical[i], "MFU", rank_flags)},
                         {"gemm_relative_efficiency",
                          bounded_ratio(tok_s * flops_per_token, peaks.measured[i], "GEMM-relative efficiency", rank_flags)},
                         {"pcu_busy_fraction", pcu_a},
                         {"memory", memory},
                         {"rss_hwm_bytes", r["rss_hwm_bytes"]},
                         {"arena_bytes", r["arena_bytes"]},
                         {"memory_estimate", r.value("memory_estimate", json(nullptr))},
                         {"param_fingerprint", r["param_fingerprint"]}});
    const auto [first, inserted] = shard_fingerprint.emplace(
        std::pair{r["tp_rank"].get<int>(), r["ep_rank"].get<int>()}, r["param_fingerprint"]);
    replicas_identical = replicas_identical && (inserted || first->second == r["param_fingerprint"]);
    replicated_identical = replicated_identical && r["replicated_fingerprint"] == ranks[0]["replicated_fingerprint"];
  }

  const Summary step = summarize(measured(cluster_step, warmup));
  const double tokens_s_cluster = tokens_per_step / step.mean;
  // The data the measured steps consumed (sequences or instruction samples; targets counted by
  // the loss) over their time: ST, the fine-tuning figure, is samples/param/s.
  double measured_samples = 0, measured_loss_tokens = 0;
  for (std::size_t s = std::min<std::size_t>(warmup, root.steps.size()); s < root.steps.size(); s++) {
    measured_samples += double(root.steps[s].samples);
    measured_loss_tokens += double(root.steps[s].tokens);
  }
  const double measured_time = step.mean * step.count;
  const double samples_s = measured_time > 0 ? measured_samples / measured_time : 0.0;
  const double model_flops = tokens_s_cluster * flops_per_token;
  const double peak_measured = across_ranks(peaks.measured)["sum"], peak_theoretical = across_ranks(peaks.theoretical)["sum"];
  const double comm_share_mean = across_ranks(comm_mean)["mean"];
  // Energy per token: the steps window's energy ÷ the tokens of its steps (the measured ones).
  json nodes = node_sections(ranks, peaks, tokens_per_step / n_ranks * step.count);
  json flags = json::array();
  const json mfu = bounded_ratio(model_flops, peak_theoretical, "MFU", flags);
  const json gemm_relative = bounded_ratio(model_flops, peak_measured, "GEMM-relative efficiency", flags);
  if (!rank_flags.empty()) {
    flags.push_back(std::to_string(rank_flags.size()) + " per-rank figure(s) above 1 reported as null, the first: " +
                    rank_flags[0].get<std::string>());
  }
  bool calibration_plausible = true;
  for (const json& node : nodes["nodes"]) {
    const json& check = node["calibration_check"];
    if (check["plausible"] == false) {
      calibration_plausible = false;
      flags.push_back("node " + node["host"].get<std::string>() + ": " + check["note"].get<std::string>());
    }
  }

  json validation = json::array();
  for (const EvalSample& e : root.evals) {
    validation.push_back({{"step", e.step}, {"loss", e.loss}, {"perplexity", std::exp(e.loss)}});
  }
  json step_json = to_json(step);
  step_json["imbalance"] = across_ranks(step_mean)["imbalance"];
  json power = json::array();
  for (const json& node : nodes["nodes"]) {
    const json& sm = ranks[node["node"].get<int>()]["sampling"];
    if (!sm.is_null() && !sm["energy"].is_null()) power.push_back({{"node", node["node"]},
                       {"samples", downsample_fields(sm["energy"]["samples"], {{"t_s", Keep::Last}, {"watts", Keep::Mean}})}});
  }

  return {
      {"index", index},
      {"name", run.name},
      {"status", !root.diverged.is_null() ? "diverged" : !root.interrupted.is_null() ? "interrupted" : "ok"},
      {"diverged", root.diverged},
      {"interrupted", root.interrupted},
      {"config", run.as_json},
      {"model",
       {{"parameters", root.num_params},
        {"trainable_parameters", root.trainable_params},
        {"active_parameters_per_token", root.active_params_per_token},
        {"matmul_weights", matmul_weights(run.model)},
        {"training_flops_per_token", training_flops_per_token(run.model)},
        {"flops_convention", "docs/ARCHITECTURE.md#flops-convention"},
        {"kv_cache_bytes_per_token", kv_cache_bytes_per_token(run.model)},
        {"state_bytes_per_sequence", model_cost(run.model).state_elems_per_sequence * 4},
        {"kv_cache_note", "fp32, all layers: what inference keeps per past token (docs/ATTENTION.md)"}}},
      {"mode", eval_only ? "evaluation" : "training"},
      {"quality",
       {{"train_loss_first", eval_only || root.steps.empty() ? json(nullptr) : json(root.steps.front().loss)},
        {"train_loss_final", eval_only || root.steps.empty() ? json(nullptr) : json(root.steps.back().loss)},
        {"val_loss_final", root.evals.empty() ? json(nullptr) : json(root.evals.back().loss)},  // none: diverged
        {"val_perplexity_final", root.evals.empty() ? json(nullptr) : json(std::exp(root.evals.back().loss))}}},
      {"loss_per_step", eval_only ? json::array() : curve(root.steps, &StepSample::loss)},
      {"samples_per_step", counts(root.steps, &StepSample::samples)},
      {"loss_tokens_per_step", counts(root.steps, &StepSample::tokens)},
      {"lr_per_step", eval_only ? json::array() : curve(root.steps, &StepSample::lr)},
      {"grad_norm_per_step", eval_only ? json::array() : curve(root.steps, &StepSample::grad_norm)},
      {"param_checksums", root.param_checksums},
      {"routing", root.routing},
      {"checkpoints", root.checkpoints},
      {"validation", validation},
      {"latency",
       {{"unit", eval_only ? "s/evaluation batch" : "s/iteration"},
        {"warmup_iters_excluded", std::min(warmup, steps_taken)},
        {"measured_iters", step.count},
        {"step", step_json},
        {"compute", component(pooled_compute, compute_mean)},
        {"communication", component(pooled_comm, comm_mean)},
        {"tensor_parallel", component(pooled_tp, tp_mean)},
        {"expert_parallel", component(pooled_ep, ep_mean)},
        {"data_parallel", component(pooled_dp, dp_mean)},
        {"layout",
         {{"dp", run.parallel.dp},
          {"ep", run.parallel.ep},
          {"tp", run.parallel.tp},
          {"overlap", run.parallel.overlap && !run.parallel.zero1 && run.parallel.dp > 1},
          {"zero1", run.parallel.zero1 && run.parallel.dp > 1},
          {"sequence_parallel", run.parallel.sequence_parallel && run.parallel.tp > 1},
          {"bucket_mib", run.parallel.bucket_mib}}},
        {"communication_share", step.mean > 0 ? comm_share_mean / step.mean : 0.0},
        {"note", "step: per iteration the slowest rank; compute/communication: every rank's iterations pooled; "
                 "communication = tensor_parallel (all-reduces inside forward/backward) + expert_parallel "
                 "(MoE all-to-alls) + data_parallel (gradient sync of every replica group, and the MoE "
                 "load-balancing and routing-log all-reduces) + the loss reduction; imbalance: max ÷ "
                 "mean of the ranks' means"}}},
      {"throughput",
       {{"tokens_per_s", tokens_s_cluster},
        {"tt_tokens_per_param_per_s", tokens_s_cluster / double(root.num_params)},
        {"tt_tokens_per_active_param_per_s", tokens_s_cluster / root.active_params_per_token},
        {"tokens_per_s_per_rank", across_ranks(tokens_s)},
        {"samples_per_s", samples_s},
        {"st_samples_per_param_per_s", samples_s / double(root.num_params)},
        // fine-tuning: per trainable parameter too (docs/PEFT.md says which the paper's Table 7 is)
        {"st_samples_per_trainable_param_per_s", samples_s / double(std::max<std::size_t>(1, root.trainable_params))},
        {"loss_tokens_per_s", measured_time > 0 ? measured_loss_tokens / measured_time : 0.0},
        {"samples_note", "samples: sequences of the global batch, or instruction samples packed into them "
                         "(data.format \"instructions\"); loss tokens: targets the loss counts; over the "
                         "measured steps"}}},
      {"compute",
       {{"model_flops_per_s", model_flops},
        {"measured_peak_flops_per_s", peak_measured},
        {"theoretical_peak_flops_per_s", peak_theoretical},
        {"mfu", mfu},
        {"mfu_definition", "model FLOP/s ÷ theoretical peak (PaLM/Megatron convention)"},
        {"gemm_relative_efficiency", gemm_relative},
        {"gemm_relative_efficiency_definition", "model FLOP/s ÷ the calibration sgemm's FLOP/s on the same cores"},
        {"calibration_plausible", calibration_plausible},
        {"flags", flags},
        {"theoretical_peak_estimated", true},
        {"theoretical_peak_model", "cores × FMA pipes × fp32 lanes per pipe × 2 × all-core clock (factors and the "
                                   "clock's source per node in nodes[].theoretical_peak)"},
        {"peak_note", "each rank's peak is its share of its node's cores × the node's per-core peak"},
        {"pcu_busy_fraction", across_ranks(pcu)},
        {"pcu_definition", "CPU time ÷ wall time ÷ the rank's core share, over the steps window (the measured "
                           "steps: no set-up, warm-up, evaluation or checkpoint saves)"}}},
      {"memory",
       {{"sampled", sampled},
        {"period_s", run.metrics.sample_period_ms / 1000.0},
        {"amu", across_ranks(amu)},
        {"rss_mean_bytes", across_ranks(rss_mean)},
        {"rss_peak_bytes", across_ranks(rss_peak)},
        {"tracked_peak_bytes", across_ranks(tracked_peak)},
        {"available_bytes", across_ranks(available)},
        {"rss_hwm_bytes", across_ranks(rss_hwm)},
        {"note", "AMU = time-weighted mean of resident set ÷ memory available to the rank, over the steps "
                 "window (the measured steps); peaks over the whole sampled run"}}},
      {"energy", nodes["energy"]},
      {"windows", sampled ? run_windows(ranks, nodes["nodes"]) : json(nullptr)},
      {"nodes", nodes["nodes"]},
      {"oversubscribed", std::ranges::any_of(nodes["nodes"], [](const json& n) { return n["oversubscribed"].get<bool>(); })},
      {"wall_seconds", root.wall_seconds},
      {"replicas_identical", run.parallel.dp > run.parallel.ep ? json(replicas_identical) : json(nullptr)},
      {"replicated_tensors_identical", n_ranks > 1 ? json(replicated_identical) : json(nullptr)},
      {"ranks", rank_rows},
      {"samples",
       {{"step_seconds_per_rank", raw_steps},
        {"comm_seconds_per_rank", raw_comms},
        {"sampler_per_rank", series},
        {"power_per_node", power},
        {"max_points_per_series", kMaxSeriesPoints},
        {"note", "each series cut to at most max_points_per_series points (buckets of consecutive samples: "
                 "times and CPU seconds their last, resident and tracked bytes their maximum, step times and "
                 "watts their mean); every summary above is computed from the full series"}}},
  };
}

}  // namespace ellm
