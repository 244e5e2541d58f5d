// report.md: the summary a person reads; every figure comes from report.json.
#include <cstdio>
#include <sstream>
#include <string>

#include "report/writer.hpp"

namespace ellm {
namespace {
using nlohmann::json;

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}
std::string mib(double bytes) { return fmt("%.0f", bytes / (1024.0 * 1024.0)); }
std::string ms(double seconds) { return fmt("%.1f", seconds * 1e3); }

std::string row(std::initializer_list<std::string> cells) {
  std::string s = "|";
  for (const std::string& c : cells) s += " " + c + " |";
  return s + "\n";
}

void render_run_detail(std::ostringstream& md, const json& run) {
  md << "\n### " << run["name"].get<std::string>() << "\n\n";
  const json& lat = run["latency"];
  md << "Latency over " << lat["measured_iters"].get<int>() << " iterations ("
     << lat["warmup_iters_excluded"].get<int>() << " warm-up iterations excluded): p50 "
     << ms(lat["step"]["p50"]) << " ms, p95 " << ms(lat["step"]["p95"]) << " ms, max "
     << ms(lat["step"]["max"]) << " ms. Validation perplexity:";
  for (const json& v : run["validation"]) {
    md << " " << fmt("%.3f", v["perplexity"]) << " after step " << v["step"].get<int>()
       << (&v == &run["validation"].back() ? "." : ";");
  }
  md << "\n\n";
  md << row({"rank", "host", "BLAS threads", "step ms (mean)", "compute ms", "comm ms", "tokens/s",
             "TT (tok/param/s)", "MFU (measured peak)", "RSS MiB (mean / peak)"});
  md << row({"---", "---", "---", "---", "---", "---", "---", "---", "---", "---"});
  const double params = run["model"]["parameters"].get<double>();
  for (const json& r : run["ranks"]) {
    md << row({std::to_string(r["rank"].get<int>()), r["host"].get<std::string>(),
               std::to_string(r["blas_threads"].get<int>()), ms(r["step_seconds"]["mean"]),
               ms(r["compute_seconds"]["mean"]), ms(r["comm_seconds"]["mean"]),
               fmt("%.0f", r["tokens_per_s"]), fmt("%.2e", r["tokens_per_s"].get<double>() / params),
               fmt("%.1f%%", 100.0 * r["mfu_vs_measured_peak"].get<double>()),
               mib(r["rss_mean_bytes"]) + " / " + mib(r["rss_peak_bytes"])});
  }
}

}  // namespace

std::string render_summary_table(const json& report) {
  std::ostringstream md;
  md << row({"run", "params", "steps", "train loss", "val ppl", "step ms (mean / p95)", "comm %",
             "tokens/s", "TT (tok/param/s)", "MFU", "peak RSS MiB (max rank)"});
  md << row({"---", "---", "---", "---", "---", "---", "---", "---", "---", "---", "---"});
  for (const json& run : report["runs"]) {
    const json& lat = run["latency"];
    md << row({run["name"].get<std::string>(), fmt("%.2fM", run["model"]["parameters"].get<double>() / 1e6),
               std::to_string(run["config"]["training"]["steps"].get<int>()),
               fmt("%.3f", run["quality"]["train_loss_final"]),
               fmt("%.3f", run["quality"]["val_perplexity_final"]),
               ms(lat["step"]["mean"]) + " / " + ms(lat["step"]["p95"]),
               fmt("%.1f", 100.0 * lat["communication_share"].get<double>()),
               fmt("%.0f", run["throughput"]["tokens_per_s"]),
               fmt("%.2e", run["throughput"]["tt_tokens_per_param_per_s"]),
               fmt("%.1f%%", 100.0 * run["compute"]["mfu_vs_measured_peak"].get<double>()),
               mib(run["memory"]["rss_peak_bytes"]["max"])});
  }
  return md.str();
}

std::string render_markdown(const json& report) {
  std::ostringstream md;
  const json& prov = report["provenance"];
  const json& sys = report["system"];
  md << "# efficientllm report: " << report["job"]["name"].get<std::string>() << "\n\n";
  md << "- date (UTC): " << prov["date_utc"].get<std::string>() << "\n";
  md << "- efficientllm " << prov["efficientllm_version"].get<std::string>() << ", commit "
     << prov["git_commit"].get<std::string>() << (prov["git_dirty"].get<bool>() ? " (dirty)" : "")
     << ", " << prov["compiler"].get<std::string>() << "\n";
  md << "- " << prov["mpi_library"].get<std::string>() << "; " << prov["openblas"].get<std::string>()
     << " (kernels: " << prov["openblas_core"].get<std::string>() << "); hwloc "
     << prov["hwloc"].get<std::string>() << "\n";
  md << "- system: " << sys["cpu_model"].get<std::string>() << ", " << sys["cores"].get<int>()
     << " cores, " << mib(sys["memory_bytes"]) << " MiB; " << report["world"]["ranks"].get<int>()
     << " MPI ranks on " << report["world"]["hosts"].size() << " host(s)\n";
  md << "- job file: " << report["job"]["file"].get<std::string>() << "\n\n";
  md << "## Summary\n\n" << render_summary_table(report);
  md << "\nMFU is model FLOP/s (docs/ARCHITECTURE.md#flops-convention) over the summed measured "
        "sgemm peak of the ranks' cores. Energy (AEC) is not measured yet.\n";
  md << "\n## Runs\n";
  for (const json& run : report["runs"]) render_run_detail(md, run);
  return md.str();
}

}  // namespace ellm
