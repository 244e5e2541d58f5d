// report.md: the summary a person reads; every figure comes from report.json.
#include <stdexcept>
#include <sstream>
#include <string>

#include "report/table.hpp"
#include "report/writer.hpp"

namespace ellm {
namespace {
using nlohmann::json;

// The last entry of a per-step series; an empty or non-array one is a malformed report.
const json& last(const json& series) {
  if (!series.is_array() || series.empty()) throw std::out_of_range("a per-step series is empty or not an array");
  return series.back();
}

std::string text(const json& v) { return v.is_string() ? v.get<std::string>() : raw(v); }

std::string energy_cell(const json& energy, const char* key, const char* format) {
  const std::string v = fmt(format, energy[key]);
  if (v == "–") return v;
  const bool partial = energy.value("partial", false);  // absent from older reports
  return v + (energy["estimated"].get<bool>() ? " (est.)" : "") + (partial ? " (partial)" : "");
}

std::string list(const json& array) {
  std::string s;
  for (const json& v : array) s += (s.empty() ? std::string() : ",") + text(v);
  return s;
}

void render_energy(std::ostringstream& md, const json& run) {
  for (const json& n : run["nodes"]) {
    const json& e = n["energy"];
    md << "- energy, " << text(n["host"]) << ": ";
    if (e.is_null()) {
      md << "not sampled (metrics.sample_period_ms = 0)\n";
      continue;
    }
    md << fmt("%.3g", e["joules"]) << " J over " << fmt("%.3g", e["seconds"]) << " s of measured steps = AEC "
       << fmt("%.1f", e["aec_w"]) << " W, " << fmt("%.3g", e["j_per_token"]) << " J/token";
    if (e.contains("whole_run")) {  // reports before the windows: the figures above were the whole run's
      md << " (whole run " << fmt("%.3g", e["whole_run"]["joules"]) << " J over " << fmt("%.3g", e["whole_run"]["seconds"])
         << " s; set-up " << fmt("%.3g", e["windows"]["setup"]["joules"]) << " J, evaluation "
         << fmt("%.3g", e["windows"]["evaluation"]["joules"]) << " J)";
    }
    md << "; sources " << list(e["sources"]) << ", sampled every " << fmt("%.3g", e["period_s"]) << " s"
       << (e["estimated"].get<bool>() ? ", **estimated**" : "") << "; domains (whole run):";
    for (const json& d : e["domains"]) md << " " << text(d["name"]) << " " << fmt("%.3g", d["joules"]) << " J;";
    if (e.value("partial", false)) {
      md << " **partial**, leaves out:";
      for (const json& m : e["coverage"]["missing"]) md << " " << text(m) << ";";
    }
    if (!e["model"].is_null()) {
      md << " model " << text(e["model"]["formula"]) << " with P_idle " << fmt("%.1f", e["model"]["p_idle_w"]) << " W, P_max "
         << fmt("%.1f", e["model"]["p_max_w"]) << " W (" << text(e["model"]["constants_source"]) << ")";
    }
    md << "\n";
    for (const json& f : e["fallbacks"]) md << "  - " << text(f["source"]) << " not used: " << text(f["reason"]) << "\n";
  }
}

void render_run_detail(std::ostringstream& md, const json& run) {
  md << "\n### " << text(run["name"]) << "\n\n";
  const json none = {{"resumed_from", nullptr}, {"saved", json::array()}};
  const json& checkpoints = run.contains("checkpoints") ? run["checkpoints"] : none;  // older reports: none
  if (checkpoints.contains("initialised_from") && !checkpoints["initialised_from"].is_null())
    md << "- weights initialised from `" << text(checkpoints["initialised_from"]) << "`\n";
  if (checkpoints.contains("adapter_from"))
    md << "- adapter (PEFT layout) loaded from `" << text(checkpoints["adapter_from"]) << "`\n";
  if (const json& from = checkpoints["resumed_from"]; !from.is_null()) {
    md << "- **resumed** from `" << text(from["file"]) << "` at step " << from["step"] << " (saved at dp "
       << from["layout"]["dp"] << " × tp " << from["layout"]["tp"] << " × ep " << from["layout"]["ep"]
       << "); the figures below cover the steps after it\n";
  }
  if (!checkpoints["saved"].empty()) {
    md << "- checkpoints written after steps";
    for (const json& saved : checkpoints["saved"]) md << " " << saved["step"];
    md << " (`" << text(last(checkpoints["saved"])["file"]) << "` the last)\n";
  }
  if (run.contains("diverged") && !run["diverged"].is_null())
    md << "- **diverged** at step " << run["diverged"]["step"] << " (loss " << text(run["diverged"]["loss"])
       << ", gradient norm " << text(run["diverged"]["grad_norm"])
       << "): the run stopped there; the figures below cover the steps before it\n";
  if (run.contains("interrupted") && !run["interrupted"].is_null())
    md << "- **interrupted** by " << text(run["interrupted"]["signal"]) << " after step " << run["interrupted"]["step"]
       << "; checkpoint `" << text(run["interrupted"]["checkpoint"]) << "` (continue with `--resume`)\n";
  if (run.value("mode", "training") == "evaluation")
    md << "- **evaluation only** (training.steps = 0): the iterations below are the validation batches "
          "(forward only; MFU counts forward FLOPs), and there are no training curves\n";
  const json& lat = run["latency"];
  md << "- latency over " << lat["measured_iters"] << " iterations (" << lat["warmup_iters_excluded"]
     << " warm-up iterations excluded), ms: step p50 " << ms(lat["step"]["p50"]) << ", p95 " << ms(lat["step"]["p95"])
     << ", max " << ms(lat["step"]["max"]) << ", imbalance " << fmt("%.3f", lat["step"]["imbalance"]) << "; compute mean "
     << ms(lat["compute"]["mean"]) << ", p95 " << ms(lat["compute"]["p95"]) << ", max " << ms(lat["compute"]["max"])
     << ", imbalance " << fmt("%.3f", lat["compute"]["imbalance"]) << "; communication mean "
     << ms(lat["communication"]["mean"]) << ", p95 " << ms(lat["communication"]["p95"]) << ", max "
     << ms(lat["communication"]["max"]) << ", imbalance " << fmt("%.3f", lat["communication"]["imbalance"]) << "\n";
  md << "- communication by kind, mean ms: tensor-parallel " << ms(lat["tensor_parallel"]["mean"]);
  if (lat.contains("expert_parallel")) {  // reports before expert parallelism have none
    md << ", expert-parallel (all-to-all) " << ms(lat["expert_parallel"]["mean"]);
  }
  md << ", data-parallel " << ms(lat["data_parallel"]["mean"]) << "\n";
  if (run.contains("routing") && !run["routing"].is_null() && !run["routing"]["aux_loss_per_step"].empty()) {
    const json& routing = run["routing"];
    const json& model = run["model"];
    md << "- mixture of experts: " << fmt("%.2fM", model["parameters"].get<double>() / 1e6) << " parameters, "
       << fmt("%.2fM", model["active_parameters_per_token"].get<double>() / 1e6)
       << " active per token; routing losses (aux + z) last step "
       << fmt("%.4f", last(routing["aux_loss_per_step"]).get<double>() + last(routing["z_loss_per_step"]).get<double>())
       << "; dropped assignments last step " << fmt("%.0f", last(routing["dropped_per_step"]).get<double>())
       << "; expert load max/mean per layer:";
    for (const json& l : routing["layers"]) {
      md << " layer " << l["layer"] << " " << fmt("%.2f", l["imbalance_mean"].get<double>()) << ";";
    }
    md << "\n";
  }
  md << "- validation perplexity:";
  for (const json& v : run["validation"]) md << " " << fmt("%.3f", v["perplexity"]) << " after step " << v["step"] << ";";
  md << "\n";
  render_energy(md, run);
  for (const json& flag : at(run, "/compute/flags")) md << "- **flag**: " << text(flag) << "\n";
  if (run["oversubscribed"].get<bool>()) md << "- **oversubscribed**: more ranks than hardware threads on a node\n";

  md << "\nPlacement:\n\n" << render_placements(run["ranks"]);
  md << "\nPer rank:\n\n";
  Table ranks{{"rank", "step ms (mean / p95)", "compute ms", "comm ms", "tokens/s", "TT (tok/param/s)", "MFU",
               "GEMM-relative", "PCU (busy)", "AMU", "RSS MiB (mean / peak)"}, {}};
  const json params = run["model"]["parameters"];
  for (const json& r : run["ranks"]) {
    ranks.rows.push_back({text(r["rank"]), ms(r["step_seconds"]["mean"]) + " / " + ms(r["step_seconds"]["p95"]),
                          ms(r["compute_seconds"]["mean"]), ms(r["comm_seconds"]["mean"]), fmt("%.0f", r["tokens_per_s"]),
                          fmt("%.2e", r["tt_tokens_per_param_per_s"]), pct(r["mfu"]),
                          pct(r["gemm_relative_efficiency"]), pct(r["pcu_busy_fraction"]), pct(at(r, "/memory/amu")),
                          mib(at(r, "/memory/rss_mean_bytes")) + " / " + mib(at(r, "/memory/rss_peak_bytes"))});
  }
  md << ranks.markdown();
}

}  // namespace

std::string render_topology(const json& nodes) {
  std::ostringstream md;
  for (const json& n : nodes) {
    const json& t = n["topology"];
    md << "\n**" << text(n["host"]) << "** (node " << n["node"] << ", " << n["ranks_on_node"] << " rank(s)): "
       << text(t["cpu_model"]) << "; " << t["packages"] << " package(s), " << t["numa_nodes"] << " NUMA node(s), "
       << t["cores"] << " cores, " << t["pus"] << " hardware threads; caches:";
    for (const json& c : t["caches"]) md << " " << text(c["name"]) << " " << fmt("%.0f", c["size_bytes"].get<double>() / 1024) << " KiB ×" << c["count"];
    md << "; GPUs: " << (t["gpus"].empty() ? "none" : "");
    for (const json& g : t["gpus"]) md << text(g["model"]) << " (" << text(g["pci_busid"]) << ") ";
    md << "\n\n";
    Table domains{{"package", "NUMA node", "cores", "hardware threads (PU OS indexes)"}, {}};
    for (const json& d : t["domains"]) domains.rows.push_back({text(d["package"]), text(d["numa"]), text(d["cores"]), text(d["pus"])});
    md << domains.markdown();
  }
  return md.str();
}


std::string render_placements(const json& rank_rows) {
  Table map{{"rank", "host", "policy", "binding", "PUs", "cores", "package", "NUMA", "GPU", "BLAS threads", "threads bound"}, {}};
  for (const json& r : rank_rows) {
    const json& p = r["placement"];
    map.rows.push_back({text(r["rank"]), text(r["host"]), text(p["policy"]), text(p["binding"]), text(p["pus"]), text(p["cores"]),
                        list(p["packages"]), list(p["numa_nodes"]), p["gpu"].is_null() ? "–" : text(p["gpu"]["index"]),
                        text(p["blas_threads"]), text(p["threads_bound"]["inside"]) + "/" + text(p["threads_bound"]["total"])});
  }
  return map.markdown();
}

std::string render_summary_table(const json& report) {
  Table t{{"run", "ranks", "params", "steps", "train loss", "val ppl", "step ms (mean / p95)", "step imbalance", "comm %",
           "tokens/s", "TT (tok/param/s)", "MFU / GEMM-relative", "PCU", "AMU (mean rank)", "peak RSS MiB (max rank)",
           "J/token", "AEC W"},
          {}};
  for (const json& run : report["runs"]) {
    const json& lat = run["latency"];
    t.rows.push_back({text(run["name"]), text(report["world"]["ranks"]), fmt("%.2fM", run["model"]["parameters"].get<double>() / 1e6),
                      text(run["config"]["training"]["steps"]), fmt("%.3f", run["quality"]["train_loss_final"]),
                      fmt("%.3f", run["quality"]["val_perplexity_final"]),
                      ms(lat["step"]["mean"]) + " / " + ms(lat["step"]["p95"]), fmt("%.3f", lat["step"]["imbalance"]),
                      pct(lat["communication_share"]), fmt("%.0f", run["throughput"]["tokens_per_s"]),
                      fmt("%.2e", run["throughput"]["tt_tokens_per_param_per_s"]),
                      pct(run["compute"]["mfu"]) + " / " + pct(run["compute"]["gemm_relative_efficiency"]),
                      pct(at(run, "/compute/pcu_busy_fraction/mean")), pct(at(run, "/memory/amu/mean")),
                      mib(at(run, "/memory/rss_peak_bytes/max")), energy_cell(run["energy"], "j_per_token", "%.3g"),
                      energy_cell(run["energy"], "aec_w", "%.1f")});
  }
  return t.markdown();
}

std::string render_markdown(const json& report) {
  std::ostringstream md;
  const json& prov = report["provenance"];
  const json& sys = report["system"];
  md << "# efficientllm report: " << text(report["job"]["name"]) << "\n\n";
  md << "- date (UTC): " << text(prov["date_utc"]) << "\n";
  md << "- efficientllm " << text(prov["efficientllm_version"]) << ", commit " << text(prov["git_commit"])
     << (prov["git_dirty"].get<bool>() ? " (dirty)" : "") << ", " << text(prov["compiler"]) << "\n";
  md << "- " << text(prov["mpi_library"]) << "; " << text(prov["openblas"]) << " (kernels: " << text(prov["openblas_core"])
     << "); hwloc " << text(prov["hwloc"]) << "\n";
  md << "- system: " << text(sys["cpu_model"]) << ", " << sys["cores"] << " cores, " << mib(sys["memory_bytes"]) << " MiB; "
     << report["world"]["ranks"] << " MPI ranks on " << report["world"]["hosts"].size() << " host(s)\n";
  md << "- job file: " << text(report["job"]["file"]) << "\n\n";
  md << "## Summary\n\n" << render_summary_table(report);
  md << "\nMFU is model FLOP/s (docs/ARCHITECTURE.md#flops-convention) over the ranks' summed theoretical peak "
        "(cores × FMA pipes × fp32 lanes × 2 × all-core clock, from a per-microarchitecture table: an estimate; "
        "the clock's source is in report.json). GEMM-relative efficiency is the same FLOP/s over a calibration sgemm "
        "on each node's cores. A ratio above 1 is printed as – and explained under the run's flags. PCU is the busy share of each rank's cores, AMU its resident set over the memory available to it "
        "(docs/METRICS.md). AMU, PCU, AEC and J/token cover the measured steps only (set-up, warm-up, evaluation and "
        "checkpoint saves have their own figures in report.json's windows). Energy figures marked (est.) come from the "
        "power model, not from a counter; (partial) ones leave out some of a node's devices.\n";
  md << "\n## Topology\n" << render_topology(report["topology"]["nodes"]);
  md << "\n## Runs\n";
  for (const json& run : report["runs"]) render_run_detail(md, run);
  return md.str();
}

}  // namespace ellm
