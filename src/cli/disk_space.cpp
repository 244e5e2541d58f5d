#include "cli/disk_space.hpp"

#include <sys/statvfs.h>

#include <cstdint>
#include <cstdio>
#include <map>

#include "model/plan.hpp"
#include "model/tensor.hpp"

namespace ellm::cli {
namespace fs = std::filesystem;
namespace {

// An allowance per run for report.json/md/csv and its runs.jsonl line (a run with 64 ranks and a
// few thousand steps stays well under it).
constexpr double kReportBytesPerRun = 4.0 * (1 << 20);

// The checkpoints a run writes: whole F32 tensors, with both AdamW moments of the trainable ones.
double checkpoint_bytes(const RunConfig& run) {
  if (!run.checkpoint.save || run.training.steps == 0) return 0;
  const ParamCounts n = count_params(make_param_layout(run.model));
  const double per_file = 4.0 * (n.total + (run.checkpoint.optimizer ? 2.0 * n.trainable : 0.0)) + (1 << 20);
  const int files = (run.checkpoint.every > 0 ? run.training.steps / run.checkpoint.every : 0) + 1;
  return per_file * files;
}

double free_bytes(const fs::path& dir) {
  struct statvfs s {};
  if (::statvfs(dir.c_str(), &s) != 0) return -1;
  return double(s.f_bavail) * double(s.f_frsize);
}

std::string mib(double bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MiB", bytes / (1 << 20));
  return text;
}

}  // namespace

std::string disk_space_problem(const Job& job, const fs::path& out_dir) {
  // What goes where: the reports and default checkpoints under out_dir, others to checkpoint.dir
  // (a directory that may not exist yet: its nearest existing parent's file system).
  std::map<fs::path, double> need{{out_dir, 0.0}};
  for (const RunConfig& run : job.runs) {
    need[out_dir] += kReportBytesPerRun;
    fs::path dir = run.checkpoint.dir.empty() ? out_dir : fs::absolute(run.checkpoint.dir);
    while (!fs::exists(dir) && dir.has_parent_path() && dir != dir.parent_path()) dir = dir.parent_path();
    need[dir] += checkpoint_bytes(run);
  }
  for (const auto& [dir, bytes] : need) {
    const double available = free_bytes(dir);
    if (available >= 0 && available < bytes)
      return dir.string() + ": " + mib(available) + " free on its file system, and the job will write about " +
             mib(bytes) + " there (reports and checkpoints: checkpoint.save, checkpoint.every); free some space or "
             "choose another --out or checkpoint.dir";
  }
  return "";
}

}  // namespace ellm::cli
