#include "metrics/sampler.hpp"

#include <algorithm>
#include <chrono>

#include "metrics/cpu.hpp"
#include "metrics/memory.hpp"

namespace ellm {
namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

MemorySummary summarize_memory(const RankSeries& s, std::uint64_t available_bytes) {
  MemorySummary m;
  const std::size_t n = s.t_s.size();
  if (n == 0) return m;
  const double span = s.t_s.back() - s.t_s.front();
  double rss_time = 0;
  for (std::size_t i = 0; i + 1 < n; i++) rss_time += double(s.rss_bytes[i]) * (s.t_s[i + 1] - s.t_s[i]);
  m.rss_mean_bytes = span > 0 ? rss_time / span : double(s.rss_bytes[0]);
  m.amu = available_bytes > 0 ? m.rss_mean_bytes / double(available_bytes) : 0.0;
  m.rss_peak_bytes = *std::max_element(s.rss_bytes.begin(), s.rss_bytes.end());
  m.tracked_peak_bytes = *std::max_element(s.tracked_bytes.begin(), s.tracked_bytes.end());
  return m;
}

double busy_cores(const RankSeries& s) {
  if (s.t_s.size() < 2 || s.t_s.back() <= s.t_s.front()) return 0.0;
  return (s.cpu_s.back() - s.cpu_s.front()) / (s.t_s.back() - s.t_s.front());
}

std::array<WindowFigures, kWindows> summarize_windows(const RankSeries& s) {
  std::array<WindowFigures, kWindows> w{};
  const bool energy = s.joules.size() == s.t_s.size();
  for (std::size_t i = 0; i + 1 < s.t_s.size(); i++) {
    WindowFigures& f = w[static_cast<int>(s.window[i])];
    const double dt = s.t_s[i + 1] - s.t_s[i];
    f.seconds += dt;
    f.rss_time += double(s.rss_bytes[i]) * dt;
    f.cpu_s += s.cpu_s[i + 1] - s.cpu_s[i];
    if (energy) f.joules += s.joules[i + 1] - s.joules[i];
  }
  return w;
}

Sampler::Sampler(double period_s, energy::Meter* energy) : period_s_(period_s), energy_(energy) {
  start_ = now_seconds();
  if (energy_) energy_->begin();
  take(0.0);
  thread_ = std::thread([this] { loop(); });
}

Sampler::~Sampler() {
  if (thread_.joinable()) stop();
}

void Sampler::take(double t) {
  series_.t_s.push_back(t);
  series_.rss_bytes.push_back(resident_bytes());
  series_.tracked_bytes.push_back(tracked_.load(std::memory_order_relaxed));
  series_.cpu_s.push_back(process_cpu_seconds());
  series_.window.push_back(window_);
  if (energy_) series_.joules.push_back(energy_->joules());
}

void Sampler::tick(double t) {
  if (energy_) energy_->sample(t);
  take(t);
}

void Sampler::enter(Window w) {
  std::lock_guard lock(mutex_);
  if (w == window_) return;
  window_ = w;
  tick(now_seconds() - start_);
}

void Sampler::loop() {
  std::unique_lock lock(mutex_);
  // Ticks on a fixed grid from the start, so a slow read does not stretch the period.
  for (int n = 1;; n++) {
    const auto deadline = std::chrono::steady_clock::time_point(
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::duration<double>(start_ + n * period_s_)));
    if (wake_.wait_until(lock, deadline, [this] { return stopping_; })) return;
    tick(now_seconds() - start_);
  }
}

Sampler::Result Sampler::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
  const double t = now_seconds() - start_;
  nlohmann::json energy = energy_ ? energy_->finish(t, period_s_) : nlohmann::json(nullptr);  // reads at t
  take(t);
  return {std::move(series_), std::move(energy)};
}

}  // namespace ellm
