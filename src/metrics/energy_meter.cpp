#include "metrics/energy_meter.hpp"

#include <numeric>

namespace ellm::energy {
namespace {

// Per-core figures from a representative part's TDP ÷ cores; idle as a share of it. Coarse on
// purpose: they exist so that a machine without counters still gets a number, labelled as an
// estimate, with these constants printed beside it and overridable (metrics.p_idle_w/p_max_w).
struct Default {
  const char* match;  // substring of the CPU model name
  double idle_w_per_core, max_w_per_core;
  const char* basis;
};
constexpr Default kDefaults[] = {
    {"EPYC", 1.1, 3.75, "AMD EPYC 9654: 360 W TDP / 96 cores, idle about 30 % of it"},
    {"Xeon", 2.0, 6.75, "Intel Xeon Platinum 8380: 270 W TDP / 40 cores, idle about 30 % of it"},
    {"Ryzen", 1.5, 10.6, "AMD Ryzen 9 7950X: 170 W TDP / 16 cores, idle about 15 % of it"},
    {"Core(TM)", 1.0, 7.8, "Intel Core i7-13700K: 125 W base power / 16 cores, idle about 13 % of it"},
};
constexpr Default kGeneric = {"", 1.5, 6.0, "no entry for this CPU model: a generic 6 W per core, 1.5 W idle"};

}  // namespace

PowerModel power_model(const std::string& cpu_model, int cores, double p_idle_w, double p_max_w) {
  if (p_idle_w > 0 && p_max_w > 0) return {p_idle_w, p_max_w, "set by the job (metrics.p_idle_w, metrics.p_max_w)"};
  const Default* d = &kGeneric;
  for (const Default& candidate : kDefaults) {
    if (cpu_model.find(candidate.match) != std::string::npos) d = &candidate;
  }
  return {d->idle_w_per_core * cores, d->max_w_per_core * cores,
          "default for \"" + cpu_model + "\" × " + std::to_string(cores) + " cores (" + d->basis + ")"};
}

double power_w(const PowerModel& m, double utilization) {
  return m.p_idle_w + (m.p_max_w - m.p_idle_w) * utilization;
}

Meter::Meter(const std::filesystem::path& root, const std::string& nvml_library, Devices node)
    : root_(root), node_(node) {
  std::string why;
  std::unique_ptr<Reader> cpu = open_rapl(root, why);
  if (!cpu) {
    fallbacks_.push_back({{"source", "rapl"}, {"reason", why}});
    why.clear();
    cpu = open_hwmon(root, why);
    if (!cpu) fallbacks_.push_back({{"source", "hwmon"}, {"reason", why}});
  }
  if (cpu) counters_.push_back({std::move(cpu), {}, {}});
  why.clear();
  if (std::unique_ptr<Reader> gpu = open_nvml(nvml_library, why)) {
    counters_.push_back({std::move(gpu), {}, {}});
  } else {
    fallbacks_.push_back({{"source", "nvml"}, {"reason", why}});
  }
  estimate_ = counters_.empty() || counters_.front().reader->source() == "nvml";
}

void Meter::read(Counters& c) {
  std::vector<std::uint64_t> now;
  std::string error;
  if (!c.reader->read(now, error)) {  // the next good read still covers this interval
    failed_reads_++;
    last_error_ = error;
    return;
  }
  for (std::size_t i = 0; i < now.size() && !c.last.empty(); i++) {
    c.joules[i] += 1e-6 * double(counter_delta(c.last[i], now[i], c.reader->domains()[i].max_uj));
  }
  c.last = now;
}

void Meter::begin() {
  for (Counters& c : counters_) {
    c.last.clear();
    c.joules.assign(c.reader->domains().size(), 0.0);
    read(c);
  }
  std::string error;
  cpu_last_ = estimate_ ? read_node_cpu(root_, error) : std::nullopt;
  if (estimate_ && !cpu_last_) last_error_ = error;
  estimate_joules_ = t_last_ = joules_at_last_ = u_last_ = 0;
  failed_reads_ = 0;
  t_s_.clear();
  watts_.clear();
}

void Meter::sample(double t) {
  for (Counters& c : counters_) read(c);
  if (cpu_last_) {
    std::string error;
    if (const auto now = read_node_cpu(root_, error)) {
      // /proc/stat counts whole clock ticks (10 ms): a reading within the same tick as the last
      // one says nothing about the interval (it would read as idle), so the interval is charged
      // at the last utilisation seen; every interval's power stays within [P_idle, P_max].
      if (now->total > cpu_last_->total) {
        u_last_ = utilization(*cpu_last_, *now);
        cpu_last_ = now;
      }
      estimate_joules_ += power_w(model_, u_last_) * (t - t_last_);
    } else {
      failed_reads_++;
      last_error_ = error;
    }
  }
  double total = estimate_joules_;
  for (const Counters& c : counters_) total = std::accumulate(c.joules.begin(), c.joules.end(), total);
  if (t > t_last_) {
    t_s_.push_back(t);
    watts_.push_back((total - joules_at_last_) / (t - t_last_));
  }
  t_last_ = t;
  joules_at_last_ = total;
}

nlohmann::json Meter::coverage(bool modelled, bool& partial) const {
  int packages = 0, gpus = 0;
  bool cpu_counter = false, packages_known = false;
  for (const Counters& c : counters_) {
    const std::string source = c.reader->source();
    for (const Domain& d : c.reader->domains()) {
      if (source == "nvml") {
        gpus++;
      } else if (source == "rapl") {  // top-level zones are packages ("package-0"), sub-zones "package-0/dram"
        packages += d.name.find('/') == std::string::npos;
        packages_known = true;
      } else if (d.name.find("/Esocket") != std::string::npos) {  // hwmon: amd_energy's socket counters
        packages++;
        packages_known = true;
      }
      cpu_counter = cpu_counter || source != "nvml";
    }
  }
  nlohmann::json missing = nlohmann::json::array();
  const std::string cpu = cpu_counter ? "measured" : modelled ? "modelled" : "none";
  if (cpu == "none") missing.push_back("the CPUs: no CPU counter and no power model (" + last_error_ + ")");
  if (cpu_counter && packages_known && node_.cpu_packages > 0 && packages < node_.cpu_packages)
    missing.push_back(std::to_string(node_.cpu_packages - packages) + " of the node's " + std::to_string(node_.cpu_packages) +
                      " CPU packages: no counter for them");
  if (gpus < node_.gpus)
    missing.push_back(std::to_string(node_.gpus - gpus) + " of the node's " + std::to_string(node_.gpus) +
                      " GPUs: no energy counter (NVML covers NVIDIA GPUs only)");
  partial = !missing.empty();
  return {{"cpu", cpu},
          {"cpu_packages", node_.cpu_packages > 0 ? nlohmann::json(node_.cpu_packages) : nlohmann::json(nullptr)},
          {"cpu_packages_measured", packages_known ? nlohmann::json(packages) : nlohmann::json(nullptr)},
          {"gpus", node_.gpus},
          {"gpus_measured", gpus},
          {"missing", missing}};
}

nlohmann::json Meter::finish(double t, double period_s) {
  sample(t);
  nlohmann::json domains = nlohmann::json::array(), sources = nlohmann::json::array();
  for (const Counters& c : counters_) {
    sources.push_back(c.reader->source());
    for (std::size_t i = 0; i < c.joules.size(); i++) {
      domains.push_back({{"name", c.reader->domains()[i].name}, {"source", c.reader->source()},
                         {"joules", c.joules[i]}, {"estimated", false}});
    }
  }
  nlohmann::json model = nullptr, fallbacks = fallbacks_;
  const bool modelled = estimate_ && cpu_last_;
  if (modelled) {
    sources.insert(sources.begin(), "estimate");
    domains.insert(domains.begin(), nlohmann::json{{"name", "cpu (modelled)"}, {"source", "estimate"},
                                                   {"joules", estimate_joules_}, {"estimated", true}});
    model = {{"formula", "P = P_idle + (P_max - P_idle) * u"},
             {"p_idle_w", model_.p_idle_w},
             {"p_max_w", model_.p_max_w},
             {"constants_source", model_.source},
             {"utilization_source", (root_ / "proc/stat").string() + ": busy share of all CPUs per sample"}};
  } else if (estimate_) {
    fallbacks.push_back({{"source", "estimate"}, {"reason", last_error_}});
  }
  const bool any = !domains.empty();
  bool partial = false;
  nlohmann::json covers = coverage(modelled, partial);
  return {{"sources", sources},
          {"estimated", modelled},
          {"partial", any && partial},
          {"coverage", covers},
          {"period_s", period_s},
          {"seconds", t},
          {"joules", any ? nlohmann::json(joules_at_last_) : nlohmann::json(nullptr)},
          {"aec_w", any && t > 0 ? nlohmann::json(joules_at_last_ / t) : nlohmann::json(nullptr)},
          {"domains", domains},
          {"model", model},
          {"fallbacks", fallbacks},
          {"failed_reads", failed_reads_},
          {"last_error", last_error_},
          {"samples", {{"t_s", t_s_}, {"watts", watts_}}}};
}

}  // namespace ellm::energy
