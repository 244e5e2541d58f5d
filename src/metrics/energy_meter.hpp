// The energy of one node over a run, sampled by the node's lowest rank: CPU energy from RAPL,
// else hwmon, GPU energy from NVML, and — only where no CPU counter can be read — the labelled
// estimate P = P_idle + (P_max − P_idle) × u from the node's CPU utilization (/proc/stat).
#pragma once
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "metrics/cpu.hpp"
#include "metrics/energy.hpp"

namespace ellm::energy {

class Meter {
 public:
  // Tries every source once (once per job) and keeps the reasons the unusable ones gave.
  Meter(const std::filesystem::path& root, const std::string& nvml_library);
  void set_model(PowerModel model) { model_ = std::move(model); }  // per run: overrides may differ
  void begin();                  // the baseline of a run, at t = 0
  void sample(double t_seconds); // one reading, t seconds after begin()
  // The node's record for the run (docs/report.schema.json, $defs/node_energy); samples once more
  // at t_seconds.
  nlohmann::json finish(double t_seconds, double period_s);

 private:
  struct Counters {
    std::unique_ptr<Reader> reader;
    std::vector<std::uint64_t> last;
    std::vector<double> joules;
  };
  void read(Counters& c);

  std::filesystem::path root_;
  PowerModel model_;
  std::vector<Counters> counters_;
  std::vector<nlohmann::json> fallbacks_;  // {source, reason}
  bool estimate_ = false;                  // no CPU counter: the CPU's energy is modelled
  std::optional<NodeCpuTimes> cpu_last_;
  double estimate_joules_ = 0, t_last_ = 0, joules_at_last_ = 0;
  int failed_reads_ = 0;
  std::string last_error_;
  std::vector<double> t_s_, watts_;  // node power per interval
};

}  // namespace ellm::energy
