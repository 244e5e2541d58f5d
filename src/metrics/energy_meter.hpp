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

// What the node holds, from its topology: energy that does not cover all of it is partial.
struct Devices {
  int cpu_packages = 0;  // 0: unknown (not checked)
  int gpus = 0;          // compute GPUs
};

class Meter {
 public:
  // Tries every source once (once per job) and keeps the reasons the unusable ones gave.
  Meter(const std::filesystem::path& root, const std::string& nvml_library, Devices node = {});
  void set_model(PowerModel model) { model_ = std::move(model); }  // per run: overrides may differ
  void begin();                  // the baseline of a run, at t = 0
  void sample(double t_seconds); // one reading, t seconds after begin()
  double joules() const { return joules_at_last_; }  // since begin(), as of the last reading
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
  // Which of the node's devices the record covers: {"cpu", "cpu_packages", "cpu_packages_measured",
  // "gpus", "gpus_measured", "missing"}, and whether that is partial.
  nlohmann::json coverage(bool modelled, bool& partial) const;

  std::filesystem::path root_;
  Devices node_;
  PowerModel model_;
  std::vector<Counters> counters_;
  std::vector<nlohmann::json> fallbacks_;  // {source, reason}
  bool estimate_ = false;                  // no CPU counter: the CPU's energy is modelled
  std::optional<NodeCpuTimes> cpu_last_;
  double estimate_joules_ = 0, t_last_ = 0, joules_at_last_ = 0;
  double u_last_ = 0;  // the estimate: the node's utilisation at the last /proc/stat reading that moved
  int failed_reads_ = 0;
  std::string last_error_;
  std::vector<double> t_s_, watts_;  // node power per interval
};

}  // namespace ellm::energy
