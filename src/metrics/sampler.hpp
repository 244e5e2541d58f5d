// The per-rank sampler thread: every period it records the rank's resident set, the bytes of its
// tracked arenas and its CPU time; on the node's lowest rank it also drives the node's energy
// meter on the same ticks. The trainer marks where each window of the run begins (enter), which
// takes a sample there too. AMU, PCU(a) and AEC are computed per window from these series
// (docs/METRICS.md, "Windows").
#pragma once
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "metrics/energy_meter.hpp"
#include "metrics/window.hpp"

namespace ellm {

struct RankSeries {
  std::vector<double> t_s;                  // since the sampler started
  std::vector<std::uint64_t> rss_bytes;     // resident set
  std::vector<std::uint64_t> tracked_bytes; // parameters, gradients, optimizer state, activations
  std::vector<double> cpu_s;                // process CPU time, all threads
  std::vector<Window> window;               // the window from this sample to the next
  std::vector<double> joules;               // the node's energy so far (lowest rank only, else empty)
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

// One window's share of the series: the intervals between consecutive samples that began in it.
struct WindowFigures {
  double seconds = 0;
  double rss_time = 0;  // ∫ rss dt (byte-seconds): the window's mean resident set is rss_time ÷ seconds
  double cpu_s = 0;     // process CPU seconds spent in it
  double joules = 0;    // the node's energy in it (0 without a joules series)
};
std::array<WindowFigures, kWindows> summarize_windows(const RankSeries& s);

class Sampler {
 public:
  // Takes the first sample and starts the thread. `energy` is null except on the node's lowest rank.
  Sampler(double period_s, energy::Meter* energy);
  ~Sampler();
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  void set_tracked_bytes(std::uint64_t bytes) { tracked_.store(bytes, std::memory_order_relaxed); }
  // The run enters window `w` now: a sample (and an energy reading) marks the edge. The sampler
  // starts in Window::setup; entering the window it is in does nothing.
  void enter(Window w);
  // Stops the thread after a last sample; `energy` is the node record (null off the lowest rank).
  struct Result {
    RankSeries series;
    nlohmann::json energy;
  };
  Result stop();

 private:
  void take(double t);
  void tick(double t);  // an energy reading, then a sample
  void loop();

  double period_s_;
  energy::Meter* energy_;
  std::atomic<std::uint64_t> tracked_{0};
  double start_ = 0;
  Window window_ = Window::setup;
  RankSeries series_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace ellm
