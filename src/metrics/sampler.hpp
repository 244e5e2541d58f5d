// The per-rank sampler thread: every period it records the rank's resident set, the bytes of its
// tracked arenas and its CPU time; on the node's lowest rank it also drives the node's energy
// meter on the same ticks. AMU and PCU(a) are computed from these series (docs/METRICS.md).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "metrics/energy_meter.hpp"

namespace ellm {

struct RankSeries {
  std::vector<double> t_s;                  // since the sampler started
  std::vector<std::uint64_t> rss_bytes;     // resident set
  std::vector<std::uint64_t> tracked_bytes; // parameters, gradients, optimizer state, activations
  std::vector<double> cpu_s;                // process CPU time, all threads
};

struct MemorySummary {
  double amu = 0;            // time-weighted mean of rss / available, in [0, ∞)
  double rss_mean_bytes = 0; // time-weighted
  std::uint64_t rss_peak_bytes = 0, tracked_peak_bytes = 0;
};
// Time-weighted (each sample holds until the next) over the series; one sample stands alone.
MemorySummary summarize_memory(const RankSeries& s, std::uint64_t available_bytes);
// CPU seconds per wall second over the series: how many cores' worth the rank kept busy.
double busy_cores(const RankSeries& s);

class Sampler {
 public:
  // Takes the first sample and starts the thread. `energy` is null except on the node's lowest rank.
  Sampler(double period_s, energy::Meter* energy);
  ~Sampler();
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  void set_tracked_bytes(std::uint64_t bytes) { tracked_.store(bytes, std::memory_order_relaxed); }
  // Stops the thread after a last sample; `energy` is the node record (null off the lowest rank).
  struct Result {
    RankSeries series;
    nlohmann::json energy;
  };
  Result stop();

 private:
  void take(double t);
  void loop();

  double period_s_;
  energy::Meter* energy_;
  std::atomic<std::uint64_t> tracked_{0};
  double start_ = 0;
  RankSeries series_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace ellm
