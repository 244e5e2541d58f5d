// The compute limit of a node, two ways: measured (a calibration sgemm on the node's cores, once
// per node per job) and theoretical (cores × SIMD lanes × FMA units × 2 × clock, an estimate
// from what the CPU says about itself). docs/METRICS.md explains where each factor comes from.
#pragma once
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace ellm {

// Best FLOP/s of repeated n×n×n sgemm (random operands) over at least min_seconds.
double measure_sgemm_peak(int n = 1024, double min_seconds = 0.3);
// The calibration size for `threads` cores: 1024 · ⌈∛threads⌉ (at most 4096), so each thread
// keeps about as much work as one thread has at 1024³.
int calibration_size(int threads);

// fp32 FLOP/s of one core = SIMD lanes × FMA units × 2 × clock.
struct TheoreticalPeak {
  double flops_per_s_per_core = 0;
  int simd_lanes = 0;     // fp32 lanes of the widest vector unit (cpuinfo flags)
  int fma_units = 0;      // vector FMA issues per cycle (a table by vendor and family)
  double clock_hz = 0;    // cpufreq's maximum, else /proc/cpuinfo's "cpu MHz"
  std::string lanes_source, fma_source, clock_source;
};
// From root/proc/cpuinfo and root/sys/devices/system/cpu/cpu0/cpufreq; flops 0 when a factor
// cannot be found (its source then says why).
TheoreticalPeak theoretical_peak(const std::filesystem::path& root);
nlohmann::json to_json(const TheoreticalPeak& p);

}  // namespace ellm
