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

// Every byte of `text` to fd (a full disk ends it with ENOSPC).
bool write_all(int fd, const std::string& text) {
  for (std::size_t done = 0; done < text.size();) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += std::size_t(n);
  }
  return true;
}

// Write to a temporary file and rename it over the target, so a reader (or a crash, or a full
// disk) never sees half a report: on failure the previous file stays and the temporary goes.
void write_atomically(const fs::path& target, const std::string& text) {
  const fs::path tmp = target.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(tmp, "cannot create");
  const bool ok = write_all(fd, text) && ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), target.c_str()) != 0) {
    const int why = ok ? errno : err;
    ::unlink(tmp.c_str());
    errno = why;
    fail(target, "cannot write (the previous version is kept)");
  }
}

}  // namespace

ReportWriter::ReportWriter(fs::path dir, nlohmann::json header, Reopen reopen)
    : dir_(std::move(dir)), report_(std::move(header)) {
  nlohmann::json kept = nlohmann::json::array();
  if (fs::exists(dir_ / "runs.jsonl")) {
    nlohmann::json before;
    std::ifstream in(dir_ / "report.json");
    before = nlohmann::json::parse(in, nullptr, false);
    const bool readable = !before.is_discarded() && before.contains("runs") && before["runs"].is_array();
    const bool interrupted = readable && !before["runs"].empty() && before["runs"].back().value("status", "") == "interrupted";
    const std::string job = report_["job"].value("name", ""), earlier = readable ? before["job"].value("name", "") : "";
    if (reopen == Reopen::never || (reopen == Reopen::interrupted_run && !interrupted) || !readable) {
      throw std::runtime_error(dir_.string() + ": already holds the results of a job (runs.jsonl)" +
                               (reopen == Reopen::interrupted_run ? " that was not interrupted" : "") +
                               (readable || reopen == Reopen::never ? "" : " but no readable report.json") +
                               "; choose another --out" + (reopen == Reopen::never ? ", or --continue it" : ""));
    }
    if (reopen == Reopen::finished_runs && earlier != job) {
      throw std::runtime_error(dir_.string() + ": holds the results of job \"" + earlier + "\", not \"" + job +
                               "\"; --continue takes up a directory of the same job");
    }
    for (const nlohmann::json& run : before["runs"]) {
      if (run.value("status", "") == "interrupted") continue;
      kept.push_back(run);
      kept_[run.value("name", "")] = run;
    }
  }
  std::error_code ec;
  created_dir_ = !fs::exists(dir_, ec);
  fs::create_directories(dir_, ec);
  if (ec) throw std::runtime_error(dir_.string() + ": cannot create output directory: " + ec.message());
  report_["runs"] = kept;
  rewrite_reports();
}

void ReportWriter::add_run(const nlohmann::json& run) {
  // Appended whole or not at all: a failed append (a full disk) is cut back off, so the earlier
  // runs' lines stay a valid JSON-lines file.
  const fs::path lines = dir_ / "runs.jsonl";
  const int fd = ::open(lines.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) fail(lines, "cannot open");
  const off_t before = ::lseek(fd, 0, SEEK_END);
  if (!write_all(fd, run.dump() + "\n") || ::fsync(fd) != 0) {
    const int err = errno;
    if (::ftruncate(fd, before) == 0) ::fsync(fd);
    ::close(fd);
    errno = err;
    std::string what = "cannot append run \"";  // (appended: GCC 12's false -Wrestrict on "a" + string)
    what += run.value("name", std::string());
    what += "\" (the earlier runs are kept)";
    fail(lines, what);
  }
  ::close(fd);
  report_["runs"].push_back(run);
  rewrite_reports();
}

void ReportWriter::discard_if_empty() {
  if (!report_["runs"].empty() || !created_dir_) return;
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
