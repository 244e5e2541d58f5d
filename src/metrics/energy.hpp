// Energy counters of a node, in the order they are tried (docs/METRICS.md):
//   Linux powercap RAPL   root/sys/class/powercap/intel-rapl:N[/:M]  (µJ, wraps at max_energy_range_uj)
//   hwmon energy sensors  root/sys/class/hwmon/hwmonN/energyK_input  (µJ)
//   NVML                  nvmlDeviceGetTotalEnergyConsumption per GPU (mJ), the library loaded with
//                         dlopen at run time, so the build needs nothing from NVIDIA.
// A reader that cannot be used says why; the caller records the reason and falls back.
#pragma once
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace ellm::energy {

constexpr std::uint64_t kNoWrap = std::numeric_limits<std::uint64_t>::max();

struct Domain {
  std::string name;                // "package-0", "package-0/dram", "amd_energy/Esocket0", "nvml0 ..."
  std::uint64_t max_uj = kNoWrap;  // the counter wraps to 0 after this value
};

class Reader {
 public:
  virtual ~Reader() = default;
  virtual std::string source() const = 0;  // "rapl", "hwmon", "nvml"
  virtual const std::vector<Domain>& domains() const = 0;
  // The raw counters in µJ, one per domain; false with `error` set when a read fails.
  virtual bool read(std::vector<std::uint64_t>& uj, std::string& error) = 0;
};

// Each returns nullptr and sets `why_not` when the source is absent or unusable: missing
// directories, unreadable or malformed files, a library or symbol that is not there.
std::unique_ptr<Reader> open_rapl(const std::filesystem::path& root, std::string& why_not);
std::unique_ptr<Reader> open_hwmon(const std::filesystem::path& root, std::string& why_not);
std::unique_ptr<Reader> open_nvml(const std::string& library, std::string& why_not);

// µJ consumed between two readings of a counter that wraps to 0 after max_uj.
std::uint64_t counter_delta(std::uint64_t before, std::uint64_t after, std::uint64_t max_uj);

// The labelled estimate used when no counter can be read: P = P_idle + (P_max − P_idle) × u.
struct PowerModel {
  double p_idle_w = 0, p_max_w = 0;  // for the whole node
  std::string source;                // where the two constants came from
};
// Defaults per CPU model (per-core watts × cores); overrides win when both are > 0.
PowerModel power_model(const std::string& cpu_model, int cores, double p_idle_w, double p_max_w);
double power_w(const PowerModel& m, double utilization);

}  // namespace ellm::energy
