#include "metrics/peak.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <sstream>
#include <vector>

#include "kernels/gemm.hpp"
#include "metrics/sysfs.hpp"
#include "util/rng.hpp"

namespace ellm {
namespace {

// "key : value" lines of the first processor in /proc/cpuinfo.
std::map<std::string, std::string> first_cpu(const std::filesystem::path& root) {
  std::string error;
  std::istringstream in(sysfs::read_text(root / "proc/cpuinfo", error).value_or(""));
  std::map<std::string, std::string> fields;
  for (std::string line; std::getline(in, line) && !line.empty();) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    key.erase(key.find_last_not_of(" \t") + 1);
    fields[key] = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
  }
  return fields;
}

bool has_flag(const std::string& flags, const std::string& flag) {
  return (" " + flags + " ").find(" " + flag + " ") != std::string::npos;
}

}  // namespace

double measure_sgemm_peak(int n, double min_seconds) {
  const std::size_t nn = std::size_t(n) * n;
  std::vector<float> a(nn), b(nn), c(nn);
  Rng rng(7);
  for (std::size_t i = 0; i < nn; i++) {
    a[i] = float(rng.uniform() - 0.5);
    b[i] = float(rng.uniform() - 0.5);
  }
  using clock = std::chrono::steady_clock;
  const double flops = 2.0 * n * double(n) * n;
  double best = 0.0, elapsed = 0.0;
  for (int rep = 0; rep < 2 || elapsed < min_seconds; rep++) {  // the first rep warms caches and threads
    const auto t0 = clock::now();
    kernels::gemm<float>(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    const double s = std::chrono::duration<double>(clock::now() - t0).count();
    elapsed += s;
    if (rep > 0) best = std::max(best, flops / s);
  }
  return best;
}

int calibration_size(int threads) {
  return std::min(4096, 1024 * int(std::ceil(std::cbrt(double(std::max(1, threads))) - 1e-9)));
}

TheoreticalPeak theoretical_peak(const std::filesystem::path& root) {
  std::map<std::string, std::string> cpu = first_cpu(root);
  const std::string flags = cpu.contains("flags") ? cpu["flags"] : cpu["Features"];  // x86 / Arm
  TheoreticalPeak p;
  if (has_flag(flags, "avx512f")) {
    p.simd_lanes = 16;
    p.lanes_source = "cpuinfo flag avx512f: 512-bit vectors, 16 fp32 lanes";
  } else if (has_flag(flags, "avx")) {
    p.simd_lanes = 8;
    p.lanes_source = "cpuinfo flag avx: 256-bit vectors, 8 fp32 lanes";
  } else if (has_flag(flags, "sse") || has_flag(flags, "asimd")) {
    p.simd_lanes = 4;
    p.lanes_source = "cpuinfo flag sse/asimd: 128-bit vectors, 4 fp32 lanes";
  } else {
    p.lanes_source = "unknown: no vector flag in " + (root / "proc/cpuinfo").string();
  }
  // The number of vector FMA pipes is not something the OS reports; it comes from the vendors'
  // optimisation manuals, by family.
  const std::string vendor = cpu["vendor_id"];
  const int family = cpu.contains("cpu family") ? std::atoi(cpu["cpu family"].c_str()) : 0;
  if (!has_flag(flags, "fma") && !has_flag(flags, "asimd")) {
    p.fma_units = 1;
    p.fma_source = "no fma flag: one multiply and one add per cycle (counted as 1 FMA)";
  } else if (vendor == "AuthenticAMD" && family == 25 && p.simd_lanes == 16) {
    p.fma_units = 1;
    p.fma_source = "AMD family 25 with AVX-512 (Zen 4): 512-bit FMAs issue on two 256-bit pipes";
  } else if (vendor == "AuthenticAMD" && family == 23 && !has_flag(flags, "clwb")) {
    p.fma_units = 1;
    p.fma_source = "AMD family 23 without clwb (Zen 1): 256-bit FMAs issue on two 128-bit pipes";
  } else {
    p.fma_units = 2;
    p.fma_source = "two vector FMA pipes (" + (vendor.empty() ? std::string("unknown vendor") : vendor) +
                   " family " + std::to_string(family) + ": Intel since Haswell, AMD Zen 2/3/5, Arm Neoverse)";
  }
  std::string error;
  const auto khz = sysfs::read_u64(root / "sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", error);
  if (khz && *khz > 0) {
    p.clock_hz = double(*khz) * 1e3;
    p.clock_source = "cpufreq cpuinfo_max_freq (the maximum boost clock)";
  } else if (cpu.contains("cpu MHz")) {
    p.clock_hz = std::atof(cpu["cpu MHz"].c_str()) * 1e6;
    p.clock_source = "/proc/cpuinfo cpu MHz (no cpufreq: the current or nominal clock, not boost)";
  } else {
    p.clock_source = "unknown: no cpufreq and no cpu MHz in /proc/cpuinfo";
  }
  p.flops_per_s_per_core = double(p.simd_lanes) * p.fma_units * 2.0 * p.clock_hz;
  return p;
}

nlohmann::json to_json(const TheoreticalPeak& p) {
  return {{"flops_per_s_per_core", p.flops_per_s_per_core},
          {"simd_lanes_fp32", p.simd_lanes},
          {"fma_units", p.fma_units},
          {"clock_hz", p.clock_hz},
          {"sources", {{"simd_lanes", p.lanes_source}, {"fma_units", p.fma_source}, {"clock", p.clock_source}}}};
}

}  // namespace ellm
