#include "report/progress.hpp"

#include <cmath>

namespace ellm {
namespace {
std::string format_duration(double seconds) {
  const long s = std::lround(seconds);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  return buf;
}
}  // namespace

Progress::Progress(std::FILE* out, bool interactive) : out_(out), interactive_(interactive) {}

void Progress::print(const std::string& line, bool permanent) {
  if (interactive_) {
    std::fprintf(out_, "\r\033[K%s%s", line.c_str(), permanent ? "\n" : "");
  } else {
    std::fprintf(out_, "%s\n", line.c_str());
  }
  std::fflush(out_);
}

void Progress::begin_run(int index, int count, const RunConfig& run) {
  prefix_ = "[run " + std::to_string(index + 1) + "/" + std::to_string(count) + " " + run.name + "]";
  steps_ = run.training.steps;
  log_every_ = run.training.log_every;
  tokens_per_step_ = double(run.training.batch_size) * run.model.seq_len;
  mean_step_s_ = 0;
  print(prefix_ + " starting: " + std::to_string(steps_) + " steps of " +
            std::to_string(run.training.batch_size) + "×" + std::to_string(run.model.seq_len) +
            " tokens on dp=" + std::to_string(run.parallel.dp),
        true);
}

void Progress::step(int step, const StepSample& s) {
  // Exponential average, so the first (slow, warm-up) steps do not dominate the ETA for long.
  mean_step_s_ = mean_step_s_ == 0 ? s.seconds : 0.9 * mean_step_s_ + 0.1 * s.seconds;
  const int done = step + 1;
  const bool show = interactive_ || done == 1 || done % log_every_ == 0 || done == steps_;
  if (!show) return;
  char buf[256];
  std::snprintf(buf, sizeof buf, " step %d/%d  loss %.4f  lr %.2e  %.0f tok/s  ETA %s", done,
                steps_, s.loss, s.lr, tokens_per_step_ / mean_step_s_,
                format_duration(mean_step_s_ * (steps_ - done)).c_str());
  print(prefix_ + buf, false);
}

void Progress::eval(const EvalSample& e) {
  char buf[128];
  std::snprintf(buf, sizeof buf, " eval after step %d: val loss %.4f, perplexity %.3f", e.step,
                e.loss, std::exp(e.loss));
  print(prefix_ + buf, true);
}

void Progress::end_run(double wall_seconds) {
  print(prefix_ + " done in " + format_duration(wall_seconds), true);
}

}  // namespace ellm
