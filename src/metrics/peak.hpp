// The compute limit of a node, two ways: theoretical (cores × FMA pipes × fp32 lanes per pipe ×
// 2 × all-core clock, from a per-microarchitecture table: the headline MFU's denominator, the
// PaLM/Megatron convention) and measured (a calibration sgemm on the node's cores, once per node
// per job: the denominator of the GEMM-relative efficiency). docs/METRICS.md explains each factor.
#pragma once
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace ellm {

// The calibration's bounds: at least kCalibrationReps timed repetitions after one warm-up, and at
// least kCalibrationSeconds of timed work, keeping the best: one slow repetition (a neighbour's
// burst on a shared machine) cannot lower the peak, and a long enough run lets the clock settle.
constexpr int kCalibrationReps = 5;
constexpr double kCalibrationSeconds = 1.0;
// Best FLOP/s of repeated n×n×n sgemm (random operands) within those bounds.
double measure_sgemm_peak(int n = 1024, double min_seconds = kCalibrationSeconds, int min_reps = kCalibrationReps);
// The calibration size for `threads` cores: 1024 · ⌈∛threads⌉ (at most 4096), so each thread
// keeps about as much work as one thread has at 1024³.
int calibration_size(int threads);

// fp32 FLOP/s of one core = FMA pipes × fp32 lanes per pipe × 2 × clock.
struct TheoreticalPeak {
  double flops_per_s_per_core = 0;
  std::string microarchitecture;  // the table's row ("" when the CPU is not in it)
  int simd_lanes = 0;   // fp32 lanes of the widest vectors the CPU accepts (cpuinfo flags)
  int fma_units = 0;    // vector FMA pipes per core (the table)
  int fma_lanes = 0;    // fp32 lanes one pipe retires per cycle: min(pipe width, simd_lanes)
  double clock_hz = 0;
  std::string clock_kind;  // "base", "nominal", "reported", "max_boost" or "unknown"
  std::string lanes_source, fma_source, clock_source;
};
// From root/proc/cpuinfo and root/sys/devices/system/cpu/cpu0/cpufreq; flops 0 when a factor
// cannot be found (its source then says why).
TheoreticalPeak theoretical_peak(const std::filesystem::path& root);
nlohmann::json to_json(const TheoreticalPeak& p);

}  // namespace ellm
