#include "cli/estimate_command.hpp"

#include <cstdio>
#include <iostream>

#include "kernels/gemm.hpp"
#include "metrics/peak.hpp"
#include "metrics/sysfs.hpp"
#include "topology/topology.hpp"

namespace ellm::cli {
using nlohmann::json;

namespace {

constexpr double kMiB = 1 << 20;

// One rank's FLOP/s for the step time, and where it comes from.
struct Rate {
  double flops_per_s = 0;  // 0: unknown (the CPU is not in the peak table and no --rate)
  std::string source;
};

// --measure-peak: the node calibration's sgemm on all of this machine's cores (as run measures it).
Rate measured_rate(int world) {
  const int cores = int(topology::discover().cores.size());
  kernels::set_kernel_threads(cores);
  const double flops = measure_sgemm_peak(calibration_size(cores));
  char text[256];
  std::snprintf(text, sizeof text,
                "measured sgemm peak of this machine: %.1f GFLOP/s on %d cores ÷ %d rank(s); no training step "
                "runs at its GEMM peak, so the step time is a lower bound",
                flops / 1e9, cores, world);
  return {flops / world, text};
}

// --rate, --measure-peak, else this machine's theoretical peak (metrics/peak.hpp) shared by the
// world's ranks, as if they all ran here: an upper bound on the speed, so the step time is a lower bound.
Rate rank_rate(const EstimateOptions& o, int world) {
  if (o.rate_gflops > 0) return {o.rate_gflops * 1e9, "--rate " + std::to_string(o.rate_gflops) + " GFLOP/s per rank"};
  if (o.measure_peak) return measured_rate(world);
  const TheoreticalPeak peak = theoretical_peak(sysfs::root_dir());
  if (peak.flops_per_s_per_core <= 0)
    return {0, "unknown: this CPU is not in the theoretical-peak table (" + peak.fma_source + "); pass --rate"};
  const int cores = int(topology::discover().cores.size());
  char text[256];
  std::snprintf(text, sizeof text,
                "theoretical peak of this machine (%s): %.1f GFLOP/s per core × %d cores ÷ %d rank(s); "
                "an upper bound, so the step time is a lower bound",
                peak.microarchitecture.c_str(), peak.flops_per_s_per_core / 1e9, cores, world);
  return {peak.flops_per_s_per_core * cores / world, text};
}

json params_json(const ParamCounts& p) {
  return {{"total", p.total}, {"trainable", p.trainable}, {"active_per_token", p.active_per_token}};
}

// The bench-infer KV cache of the run's inference section: every layer's cache (fp32, whole
// model) for batch sequences of prompt + generated tokens.
double bench_infer_cache_bytes(const RunConfig& run, const RunEstimate& e) {
  const InferenceConfig& i = run.inference;
  return e.kv_cache_bytes_per_token * double(i.prompt_tokens + i.gen_tokens) * i.batch;
}

json run_json(const RunConfig& run, const RunEstimate& e, const Rate& rate, int world) {
  json ranks = json::array();
  for (std::size_t r = 0; r < e.ranks.size(); r++) {
    const RankPlace& p = e.places[r];
    ranks.push_back({{"rank", p.rank}, {"dp_rank", p.dp_rank}, {"tp_rank", p.tp_rank}, {"ep_rank", p.ep_rank},
                     {"memory_bytes", to_json(e.ranks[r])}});
  }
  const double seconds = rate.flops_per_s > 0 ? e.flops_per_step / (rate.flops_per_s * world) : 0;
  const MemoryLimit available = available_memory(sysfs::root_dir(), world);
  return {{"name", run.name},
          {"world", world},
          {"layout", {{"dp", run.parallel.dp}, {"tp", run.parallel.tp}, {"ep", run.parallel.ep},
                      {"zero1", run.parallel.zero1}, {"sequence_parallel", run.parallel.sequence_parallel}}},
          {"params", params_json(e.params)},
          {"tokens_per_step", e.tokens_per_step},
          {"flops_per_step", e.flops_per_step},
          {"step_seconds_estimate", seconds > 0 ? json(seconds) : json(nullptr)},
          {"kv_cache", {{"training_bytes", nullptr},
                        {"bytes_per_token", e.kv_cache_bytes_per_token},
                        {"bench_infer_bytes", bench_infer_cache_bytes(run, e)}}},
          {"available_bytes_per_rank", available.bytes > 0 ? json(available.bytes) : json(nullptr)},
          {"available_source", available.source},
          {"ranks", ranks}};
}

std::string count_text(double n) {
  char text[32];
  if (n >= 1e9) std::snprintf(text, sizeof text, "%.2f G", n / 1e9);
  else if (n >= 1e6) std::snprintf(text, sizeof text, "%.2f M", n / 1e6);
  else std::snprintf(text, sizeof text, "%.2f k", n / 1e3);
  return text;
}

// One line per run of consecutive ranks with the same estimate ("ranks 0-3").
void print_memory_rows(const RunEstimate& e) {
  std::printf("  memory per rank (MiB)  %9s %9s %9s %11s %10s %8s %8s %8s %9s\n", "weights", "gradients",
              "optimizer", "activations", "workspaces", "comm", "data", "runtime", "total");
  for (std::size_t first = 0; first < e.ranks.size();) {
    std::size_t last = first;
    while (last + 1 < e.ranks.size() && e.ranks[last + 1] == e.ranks[first]) last++;
    const std::string who = first == last ? "rank " + std::to_string(first)
                                          : "ranks " + std::to_string(first) + "-" + std::to_string(last);
    const RankMemory& m = e.ranks[first];
    std::printf("    %-20s %9.2f %9.2f %9.2f %11.2f %10.2f %8.2f %8.2f %8.2f %9.2f\n", who.c_str(), m.weights / kMiB,
                m.gradients / kMiB, m.optimizer / kMiB, m.activations / kMiB, m.workspaces / kMiB,
                m.communication / kMiB, m.data / kMiB, m.runtime / kMiB, m.total() / kMiB);
    first = last + 1;
  }
}

void print_run(const RunConfig& run, const json& j, const RunEstimate& e) {
  const int world = j["world"].get<int>();
  std::printf("\nrun \"%s\"  dp=%d tp=%d ep=%d%s%s (%d rank%s)\n", run.name.c_str(), run.parallel.dp, run.parallel.tp,
              run.parallel.ep, run.parallel.zero1 ? " ZeRO-1" : "",
              run.parallel.sequence_parallel ? " sequence-parallel" : "", world, world == 1 ? "" : "s");
  std::printf("  parameters       total %s  trainable %s  active per token %s\n", count_text(e.params.total).c_str(),
              count_text(e.params.trainable).c_str(), count_text(e.params.active_per_token).c_str());
  std::printf("  FLOPs per step   %.4g GFLOP (training = 3 × forward, metrics/flops.hpp; %.0f tokens)\n",
              e.flops_per_step / 1e9, e.tokens_per_step);
  if (j["step_seconds_estimate"].is_null()) std::printf("  step time        unknown (no rate)\n");
  else std::printf("  step time        %.4g s  (ESTIMATE: FLOPs per step ÷ (ranks × the rate below))\n",
                   j["step_seconds_estimate"].get<double>());
  std::printf("  rate             %s\n", j["rate"]["source"].get<std::string>().c_str());
  std::printf("  KV cache         none (training); bench-infer would hold %.2f MiB (%d × %d tokens, fp32, whole model)\n",
              j["kv_cache"]["bench_infer_bytes"].get<double>() / kMiB, run.inference.batch,
              run.inference.prompt_tokens + run.inference.gen_tokens);
  print_memory_rows(e);
  if (!j["available_bytes_per_rank"].is_null())
    std::printf("  available to a rank here: %.2f MiB (%s)\n", j["available_bytes_per_rank"].get<double>() / kMiB,
                j["available_source"].get<std::string>().c_str());
}

}  // namespace

json to_json(const RankMemory& m) {
  return {{"weights", m.weights},         {"gradients", m.gradients}, {"optimizer", m.optimizer},
          {"activations", m.activations}, {"workspaces", m.workspaces}, {"data", m.data},
          {"communication", m.communication}, {"runtime", m.runtime}, {"arenas", m.arenas()},
          {"total", m.total()}};
}

RankMemory rank_estimate(const RunConfig& run, int world, int rank, std::size_t corpus_bytes, double runtime_bytes) {
  RankMemory m = estimate_rank_memory(run, world, rank_place(run.parallel, rank), corpus_bytes);
  m.runtime = runtime_bytes;
  return m;
}

void print_estimate(const Job& job, const std::vector<std::size_t>& corpus_bytes, const EstimateOptions& o,
                    double runtime_bytes) {
  json runs = json::array();
  std::vector<RunEstimate> estimates;
  for (std::size_t i = 0; i < job.runs.size(); i++) {
    const RunConfig& run = job.runs[i];
    const int world = run.parallel.dp * run.parallel.tp;
    RunEstimate e = estimate_run(run, world, corpus_bytes[i]);
    for (RankMemory& m : e.ranks) m.runtime = runtime_bytes;
    const Rate rate = rank_rate(o, world);
    json j = run_json(run, e, rate, world);
    j["rate"] = {{"flops_per_s_per_rank", rate.flops_per_s > 0 ? json(rate.flops_per_s) : json(nullptr)},
                 {"source", rate.source}};
    runs.push_back(std::move(j));
    estimates.push_back(std::move(e));
  }
  if (o.json) {
    std::cout << json{{"estimate", true}, {"job", job.file.string()}, {"runs", runs}}.dump(2) << "\n";
    return;
  }
  std::printf("%s: %zu run(s). ESTIMATES from the model's declarations (docs/ESTIMATE.md), not measurements.\n",
              job.file.string().c_str(), job.runs.size());
  std::printf("runtime: this process's resident memory (program, libraries, MPI), %.2f MiB per rank\n",
              runtime_bytes / kMiB);
  for (std::size_t i = 0; i < job.runs.size(); i++) print_run(job.runs[i], runs[i], estimates[i]);
}

std::string memory_problem(const RunConfig& run, int rank, const RankMemory& m, const MemoryLimit& limit) {
  if (limit.bytes == 0 || m.total() <= double(limit.bytes)) return "";
  char text[1024];
  std::snprintf(text, sizeof text,
                "run \"%s\" needs about %.1f MiB on rank %d (estimate: weights %.1f, gradients %.1f, optimizer "
                "%.1f, activations %.1f, workspaces %.1f, communication %.1f, data %.1f, runtime %.1f MiB) and %.1f MiB "
                "is available "
                "to a rank (%s); choose a smaller model or batch, or more ranks (efficientllm estimate shows the "
                "parts), or pass --force-memory to run anyway",
                run.name.c_str(), m.total() / kMiB, rank, m.weights / kMiB, m.gradients / kMiB, m.optimizer / kMiB,
                m.activations / kMiB, m.workspaces / kMiB, m.communication / kMiB, m.data / kMiB, m.runtime / kMiB,
                double(limit.bytes) / kMiB, limit.source.c_str());
  return text;
}

}  // namespace ellm::cli
