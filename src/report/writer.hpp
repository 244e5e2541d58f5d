// The output directory of a job: report.json (whole job), runs.jsonl (one line per finished run,
// on disk before the next run starts), report.md (what a person reads) and report.csv (cluster,
// node and rank rows for spreadsheets). Root rank only.
#pragma once
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace ellm {

// What a directory that already holds a job's results (a runs.jsonl) may be taken up for.
enum class Reopen {
  never,            // refused: a new job needs a new directory
  interrupted_run,  // --resume: the report must end with an interrupted run
  finished_runs,    // --continue: the same job's finished runs are kept and not run again
};

class ReportWriter {
 public:
  // Creates `dir` and writes the header report. A directory that already holds a runs.jsonl is
  // refused, or taken up as `reopen` allows: its finished runs are kept (an interrupted one is
  // left to runs.jsonl alone: the run that replaces it reports in report.json).
  ReportWriter(std::filesystem::path dir, nlohmann::json header, Reopen reopen = Reopen::never);
  // Appends the run to runs.jsonl (flushed and fsync'ed), then rewrites report.json and report.md.
  void add_run(const nlohmann::json& run);
  // Before any run was added: removes the header reports, and the directory if this writer
  // created it (a run refused at its start leaves nothing behind).
  void discard_if_empty();
  const std::filesystem::path& dir() const { return dir_; }
  const nlohmann::json& report() const { return report_; }
  // The runs kept from an earlier invocation (Reopen::finished_runs), by name.
  const nlohmann::json& kept_runs() const { return kept_; }

 private:
  void rewrite_reports() const;
  std::filesystem::path dir_;
  nlohmann::json report_;
  nlohmann::json kept_ = nlohmann::json::object();
  bool created_dir_ = false;
};

// report.md from a report.json document.
std::string render_markdown(const nlohmann::json& report);
// The one-line-per-run summary table of render_markdown (also printed at the end of `run`).
std::string render_summary_table(const nlohmann::json& report);
// The topology map: each node's hardware, and where each rank runs (also `efficientllm topo`).
std::string render_topology(const nlohmann::json& nodes);
std::string render_placements(const nlohmann::json& rank_rows);
// report.csv from a report.json document.
std::string render_csv(const nlohmann::json& report);

}  // namespace ellm
