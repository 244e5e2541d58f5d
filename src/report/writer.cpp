#include "report/writer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace ellm {
namespace fs = std::filesystem;
namespace {

[[noreturn]] void fail(const fs::path& p, const std::string& what) {
  throw std::runtime_error(p.string() + ": " + what + ": " + std::strerror(errno));
}

void fsync_path(const fs::path& p) {
  const int fd = ::open(p.c_str(), O_RDONLY);
  if (fd < 0 || ::fsync(fd) != 0) fail(p, "cannot sync to disk");
  ::close(fd);
}

// Write to a temporary file and rename it over the target, so a reader (or a crash) never sees
// half a report.
void write_atomically(const fs::path& target, const std::string& text) {
  const fs::path tmp = target.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!(out << text) || !out.flush()) fail(tmp, "cannot write");
  }
  fsync_path(tmp);
  fs::rename(tmp, target);
}

}  // namespace

ReportWriter::ReportWriter(fs::path dir, nlohmann::json header, bool resuming)
    : dir_(std::move(dir)), report_(std::move(header)) {
  nlohmann::json kept = nlohmann::json::array();
  if (fs::exists(dir_ / "runs.jsonl")) {
    nlohmann::json before;
    std::ifstream in(dir_ / "report.json");
    before = nlohmann::json::parse(in, nullptr, false);
    const bool interrupted = !before.is_discarded() && before.contains("runs") && !before["runs"].empty() &&
                             before["runs"].back().value("status", "") == "interrupted";
    if (!resuming || !interrupted) {
      throw std::runtime_error(dir_.string() + ": already holds the results of a job (runs.jsonl)" +
                               (resuming ? " that was not interrupted" : "") + "; choose another --out");
    }
    for (const nlohmann::json& run : before["runs"])
      if (run.value("status", "") != "interrupted") kept.push_back(run);
  }
  std::error_code ec;
  created_dir_ = !fs::exists(dir_, ec);
  fs::create_directories(dir_, ec);
  if (ec) throw std::runtime_error(dir_.string() + ": cannot create output directory: " + ec.message());
  report_["runs"] = kept;
  rewrite_reports();
}

void ReportWriter::add_run(const nlohmann::json& run) {
  const fs::path lines = dir_ / "runs.jsonl";
  {
    std::ofstream out(lines, std::ios::app);
    if (!(out << run.dump() << '\n') || !out.flush()) fail(lines, "cannot append");
  }
  fsync_path(lines);
  report_["runs"].push_back(run);
  rewrite_reports();
}

void ReportWriter::discard_if_empty() {
  if (!report_["runs"].empty()) return;
  std::error_code ec;
  for (const char* name : {"report.json", "report.md", "report.csv"}) fs::remove(dir_ / name, ec);
  if (created_dir_) fs::remove(dir_, ec);  // only if empty
}

void ReportWriter::rewrite_reports() const {
  write_atomically(dir_ / "report.json", report_.dump(2) + "\n");
  write_atomically(dir_ / "report.md", render_markdown(report_));
  write_atomically(dir_ / "report.csv", render_csv(report_));
}

}  // namespace ellm
