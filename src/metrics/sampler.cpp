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
}

void Sampler::loop() {
  std::unique_lock lock(mutex_);
  // Ticks on a fixed grid from the start, so a slow read does not stretch the period.
  for (int tick = 1;; tick++) {
    const auto deadline = std::chrono::steady_clock::time_point(
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::duration<double>(start_ + tick * period_s_)));
    if (wake_.wait_until(lock, deadline, [this] { return stopping_; })) return;
    const double t = now_seconds() - start_;
    take(t);
    if (energy_) energy_->sample(t);
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
  take(t);
  Result r{std::move(series_), energy_ ? energy_->finish(t, period_s_) : nlohmann::json(nullptr)};
  return r;
}

}  // namespace ellm
