#include "metrics/peak.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <sstream>
#include <tuple>
#include <vector>

#include "kernels/gemm.hpp"
#include "metrics/sysfs.hpp"
#include "util/rng.hpp"

namespace ellm {
namespace {

// "key : value" lines of every processor in /proc/cpuinfo.
std::vector<std::map<std::string, std::string>> cpuinfo(const std::filesystem::path& root) {
  std::string error;
  std::istringstream in(sysfs::read_text(root / "proc/cpuinfo", error).value_or(""));
  std::vector<std::map<std::string, std::string>> cpus(1);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) {
      if (!cpus.back().empty()) cpus.emplace_back();
      continue;
    }
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    key.erase(key.find_last_not_of(" \t") + 1);
    cpus.back()[key] = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
  }
  if (cpus.size() > 1 && cpus.back().empty()) cpus.pop_back();
  return cpus;
}

bool has_flag(const std::string& flags, const std::string& flag) {
  return (" " + flags + " ").find(" " + flag + " ") != std::string::npos;
}

int field_int(const std::map<std::string, std::string>& cpu, const std::string& key) {
  const auto it = cpu.find(key);
  return it == cpu.end() ? -1 : std::atoi(it->second.c_str());
}

// Vector FMA pipes per core and their width, by microarchitecture. The OS does not report them;
// they come from the vendors' optimisation manuals and public measurements:
// - Intel: "Intel 64 and IA-32 Architectures Optimization Reference Manual" (port 0 and 1 FMA
//   since Haswell; Skylake-SP/Cascade Lake Xeon Platinum and Gold 6xxx add a 512-bit FMA on
//   port 5, Gold 5xxx (but 5122), Silver and Bronze have one 512-bit FMA (ports 0+1 fused); see
//   also Intel's "Calculate the Max Flops on Skylake" forum answer and Microway's Skylake-SP
//   table). Client parts with AVX-512 (Ice Lake, Tiger Lake, Rocket Lake) fuse ports 0+1 into one
//   512-bit FMA: 32 fp32 FLOP/cycle either way, written here as 2 × 256.
// - AMD: "Software Optimization Guide for AMD Family 17h/19h/1Ah Processors". Zen/Zen+: two
//   128-bit FMA pipes; Zen 2 and Zen 3: two 256-bit; Zen 4: two 256-bit pipes, AVX-512 executed
//   as two halves ("double pumped", Mysticial's Zen 4 AVX-512 teardown, numberworld.org 2022);
//   Zen 5: two full 512-bit FMA pipes on server (Turin) and desktop (Granite Ridge) parts, but a
//   256-bit datapath on the mobile Strix Point / Krackan Point parts (Mysticial's Zen 5 AVX-512
//   teardown, numberworld.org 2024).
struct Uarch {
  const char* vendor;
  int family, model_lo, model_hi;
  const char* name;
  int fma_units, fma_bits;
};
constexpr Uarch kUarchs[] = {
    {"GenuineIntel", 6, 0x3C, 0x3C, "Haswell", 2, 256},
    {"GenuineIntel", 6, 0x3F, 0x3F, "Haswell-EP", 2, 256},
    {"GenuineIntel", 6, 0x45, 0x46, "Haswell", 2, 256},
    {"GenuineIntel", 6, 0x3D, 0x3D, "Broadwell", 2, 256},
    {"GenuineIntel", 6, 0x47, 0x47, "Broadwell", 2, 256},
    {"GenuineIntel", 6, 0x4F, 0x4F, "Broadwell-EP", 2, 256},
    {"GenuineIntel", 6, 0x56, 0x56, "Broadwell-DE", 2, 256},
    {"GenuineIntel", 6, 0x4E, 0x4E, "Skylake (client)", 2, 256},
    {"GenuineIntel", 6, 0x5E, 0x5E, "Skylake (client)", 2, 256},
    {"GenuineIntel", 6, 0x8E, 0x8E, "Kaby/Coffee/Whiskey/Amber Lake", 2, 256},
    {"GenuineIntel", 6, 0x9E, 0x9E, "Kaby/Coffee Lake", 2, 256},
    {"GenuineIntel", 6, 0xA5, 0xA6, "Comet Lake", 2, 256},
    {"GenuineIntel", 6, 0x55, 0x55, "Skylake-SP/Cascade Lake/Cooper Lake (two 512-bit FMA)", 2, 512},
    {"GenuineIntel", 6, 0x6A, 0x6A, "Ice Lake-SP", 2, 512},
    {"GenuineIntel", 6, 0x6C, 0x6C, "Ice Lake-D", 2, 512},
    {"GenuineIntel", 6, 0x8F, 0x8F, "Sapphire Rapids", 2, 512},
    {"GenuineIntel", 6, 0xCF, 0xCF, "Emerald Rapids", 2, 512},
    {"GenuineIntel", 6, 0xAD, 0xAE, "Granite Rapids", 2, 512},
    {"GenuineIntel", 6, 0x7D, 0x7E, "Ice Lake (client)", 2, 256},
    {"GenuineIntel", 6, 0x8C, 0x8D, "Tiger Lake", 2, 256},
    {"GenuineIntel", 6, 0xA7, 0xA7, "Rocket Lake", 2, 256},
    {"GenuineIntel", 6, 0x97, 0x97, "Alder Lake (P-cores)", 2, 256},
    {"GenuineIntel", 6, 0x9A, 0x9A, "Alder Lake (P-cores)", 2, 256},
    {"GenuineIntel", 6, 0xB7, 0xB7, "Raptor Lake (P-cores)", 2, 256},
    {"GenuineIntel", 6, 0xBA, 0xBA, "Raptor Lake (P-cores)", 2, 256},
    {"GenuineIntel", 6, 0xBF, 0xBF, "Raptor Lake (P-cores)", 2, 256},
    {"AuthenticAMD", 0x17, 0x00, 0x2F, "Zen/Zen+", 2, 128},
    {"AuthenticAMD", 0x17, 0x30, 0xFF, "Zen 2", 2, 256},
    {"AuthenticAMD", 0x19, 0x00, 0x0F, "Zen 3", 2, 256},
    {"AuthenticAMD", 0x19, 0x10, 0x1F, "Zen 4 (AVX-512 on two 256-bit pipes)", 2, 256},
    {"AuthenticAMD", 0x19, 0x20, 0x5F, "Zen 3", 2, 256},
    {"AuthenticAMD", 0x19, 0x60, 0xAF, "Zen 4 (AVX-512 on two 256-bit pipes)", 2, 256},
    {"AuthenticAMD", 0x1A, 0x00, 0x1F, "Zen 5 (server: two 512-bit FMA pipes)", 2, 512},
    {"AuthenticAMD", 0x1A, 0x20, 0x2F, "Zen 5 (mobile: 256-bit datapath)", 2, 256},
    {"AuthenticAMD", 0x1A, 0x40, 0x4F, "Zen 5 (desktop: two 512-bit FMA pipes)", 2, 512},
    {"AuthenticAMD", 0x1A, 0x60, 0x6F, "Zen 5 (mobile: 256-bit datapath)", 2, 256},
};

const Uarch* find_uarch(const std::string& vendor, int family, int model) {
  for (const Uarch& u : kUarchs) {
    if (vendor == u.vendor && family == u.family && model >= u.model_lo && model <= u.model_hi) return &u;
  }
  return nullptr;
}

// Skylake-SP/Cascade Lake SKUs with one 512-bit FMA: Gold 5xxx (but 5122), Silver, Bronze.
bool one_avx512_fma(const std::string& model_name) {
  if (model_name.find("Silver") != std::string::npos || model_name.find("Bronze") != std::string::npos) return true;
  return model_name.find("Gold 5") != std::string::npos && model_name.find("Gold 5122") == std::string::npos;
}

void set_lanes(TheoreticalPeak& p, const std::string& flags, const std::filesystem::path& file) {
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
    p.lanes_source = "unknown: no vector flag in " + file.string();
  }
}

void set_fma(TheoreticalPeak& p, const std::map<std::string, std::string>& cpu, const std::string& flags) {
  const std::string vendor = cpu.contains("vendor_id") ? cpu.at("vendor_id") : "";
  const int family = field_int(cpu, "cpu family"), model = field_int(cpu, "model");
  const std::string id = vendor + " family " + std::to_string(family) + " model " + std::to_string(model);
  int bits = 0;
  if (const Uarch* u = find_uarch(vendor, family, model)) {
    p.microarchitecture = u->name;
    p.fma_units = u->fma_units;
    bits = u->fma_bits;
    if (family == 6 && model == 0x55 && one_avx512_fma(cpu.contains("model name") ? cpu.at("model name") : "")) {
      p.microarchitecture = "Skylake-SP/Cascade Lake (one 512-bit FMA: Gold 5xxx, Silver, Bronze)";
      p.fma_units = 1;
    }
    p.fma_source = "microarchitecture table (src/metrics/peak.cpp): " + id + " is " + p.microarchitecture + ", " +
                   std::to_string(p.fma_units) + " × " + std::to_string(bits) + "-bit FMA pipes";
  } else if (!has_flag(flags, "fma") && !has_flag(flags, "asimd")) {
    p.fma_units = 1;
    bits = p.simd_lanes * 32;
    p.fma_source = id + ": not in the table, no fma flag: one multiply and one add per cycle (counted as 1 FMA)";
  } else {
    p.fma_units = 2;
    bits = p.simd_lanes * 32;
    p.fma_source = id + ": not in the microarchitecture table; assumed two FMA pipes as wide as the vectors (an estimate)";
  }
  p.fma_lanes = std::min(p.simd_lanes, bits / 32);
}

// The all-core clock, best source first. cpufreq's base_frequency (intel_pstate) and
// amd_pstate_nominal_freq are the clock every core holds under load (all-core turbo can be
// higher, so the peak is a floor and MFU an upper bound: the report then flags MFU > 1 rather
// than print it). Without cpufreq (virtual machines) /proc/cpuinfo's "cpu MHz" is the clock the
// hypervisor reports. Last, cpuinfo_max_freq is the single-core boost: the peak is overstated and
// MFU understated, never the other way round.
void set_clock(TheoreticalPeak& p, const std::filesystem::path& root,
               const std::vector<std::map<std::string, std::string>>& cpus) {
  const std::filesystem::path freq = root / "sys/devices/system/cpu/cpu0/cpufreq";
  std::string error;
  for (const auto& [file, kind, what] : {std::tuple{"base_frequency", "base", "the base clock every core holds under load"},
                                         std::tuple{"amd_pstate_nominal_freq", "nominal", "the nominal clock every core holds under load"}}) {
    if (const auto khz = sysfs::read_u64(freq / file, error); khz && *khz > 0) {
      p.clock_hz = double(*khz) * 1e3;
      p.clock_kind = kind;
      p.clock_source = std::string("cpufreq ") + file + " (" + what + ")";
      return;
    }
  }
  if (!std::filesystem::exists(freq)) {
    double mhz = 0;
    for (const auto& cpu : cpus) {
      if (cpu.contains("cpu MHz")) mhz = std::max(mhz, std::atof(cpu.at("cpu MHz").c_str()));
    }
    if (mhz > 0) {
      p.clock_hz = mhz * 1e6;
      p.clock_kind = "reported";
      p.clock_source = "/proc/cpuinfo cpu MHz, highest over the cores (no cpufreq: the clock a virtual machine reports)";
      return;
    }
  }
  if (const auto khz = sysfs::read_u64(freq / "cpuinfo_max_freq", error); khz && *khz > 0) {
    p.clock_hz = double(*khz) * 1e3;
    p.clock_kind = "max_boost";
    p.clock_source = "cpufreq cpuinfo_max_freq (the single-core boost clock, above the all-core clock: peak "
                     "overstated, MFU understated)";
    return;
  }
  p.clock_kind = "unknown";
  p.clock_source = "unknown: no cpufreq base/nominal/max frequency and no cpu MHz in /proc/cpuinfo";
}

}  // namespace

double measure_sgemm_peak(int n, double min_seconds, int min_reps) {
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
  // Repetition 0 warms caches and threads and is not counted.
  for (int rep = 0; rep <= min_reps || elapsed < min_seconds; rep++) {
    const auto t0 = clock::now();
    kernels::gemm<float>(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    const double s = std::chrono::duration<double>(clock::now() - t0).count();
    if (rep == 0) continue;
    elapsed += s;
    best = std::max(best, flops / s);
  }
  return best;
}

int calibration_size(int threads) {
  return std::min(4096, 1024 * int(std::ceil(std::cbrt(double(std::max(1, threads))) - 1e-9)));
}

TheoreticalPeak theoretical_peak(const std::filesystem::path& root) {
  const std::vector<std::map<std::string, std::string>> cpus = cpuinfo(root);
  const std::map<std::string, std::string>& cpu = cpus.front();
  const std::string flags = cpu.contains("flags") ? cpu.at("flags") : cpu.contains("Features") ? cpu.at("Features") : "";
  TheoreticalPeak p;
  set_lanes(p, flags, root / "proc/cpuinfo");
  set_fma(p, cpu, flags);
  set_clock(p, root, cpus);
  p.flops_per_s_per_core = double(p.fma_units) * p.fma_lanes * 2.0 * p.clock_hz;
  return p;
}

nlohmann::json to_json(const TheoreticalPeak& p) {
  return {{"flops_per_s_per_core", p.flops_per_s_per_core},
          {"microarchitecture", p.microarchitecture.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.microarchitecture)},
          {"simd_lanes_fp32", p.simd_lanes},
          {"fma_units", p.fma_units},
          {"fma_lanes_fp32", p.fma_lanes},
          {"clock_hz", p.clock_hz},
          {"clock_kind", p.clock_kind},
          {"sources", {{"simd_lanes", p.lanes_source}, {"fma_units", p.fma_source}, {"clock", p.clock_source}}}};
}

}  // namespace ellm
