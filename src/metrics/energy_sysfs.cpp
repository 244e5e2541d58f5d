// The sysfs energy readers: powercap RAPL and hwmon energy sensors.
#include <algorithm>
#include <regex>

#include "metrics/energy.hpp"
#include "metrics/sysfs.hpp"

namespace ellm::energy {
namespace fs = std::filesystem;
namespace {

// Counters that are plain files of µJ, one per domain.
class FileReader : public Reader {
 public:
  FileReader(std::string source, std::vector<Domain> domains, std::vector<fs::path> files)
      : source_(std::move(source)), domains_(std::move(domains)), files_(std::move(files)) {}
  std::string source() const override { return source_; }
  const std::vector<Domain>& domains() const override { return domains_; }
  bool read(std::vector<std::uint64_t>& uj, std::string& error) override {
    uj.clear();
    for (const fs::path& f : files_) {
      const auto v = sysfs::read_u64(f, error);
      if (!v) return false;
      uj.push_back(*v);
    }
    return true;
  }

 private:
  std::string source_;
  std::vector<Domain> domains_;
  std::vector<fs::path> files_;
};

std::vector<fs::path> sorted_entries(const fs::path& dir, const std::regex& pattern) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (std::regex_match(e.path().filename().string(), pattern)) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Opens the reader after one trial read: a domain that cannot be read now would silently
// under-count the node later, so the whole source is refused instead.
std::unique_ptr<Reader> checked(std::unique_ptr<FileReader> reader, std::string& why_not) {
  std::vector<std::uint64_t> trial;
  if (!reader->read(trial, why_not)) return nullptr;
  return reader;
}

}  // namespace

std::unique_ptr<Reader> open_rapl(const fs::path& root, std::string& why_not) {
  const fs::path dir = root / "sys/class/powercap";
  const std::vector<fs::path> zones = sorted_entries(dir, std::regex(R"(intel-rapl:\d+(:\d+)?)"));
  std::vector<Domain> domains;
  std::vector<fs::path> files;
  std::string package;  // name of the last top-level zone, to name its sub-zones
  for (const fs::path& zone : zones) {
    const std::string name = sysfs::read_line(zone / "name");
    const bool top = std::ranges::count(zone.filename().string(), ':') == 1;
    if (top) package = name;
    // psys covers the packages and would count them twice; core and uncore sit inside their
    // package's figure. DRAM is the one sub-zone outside it.
    if ((top && name == "psys") || (!top && name != "dram")) continue;
    const auto max = sysfs::read_u64(zone / "max_energy_range_uj", why_not);
    if (!max) return nullptr;
    domains.push_back({top ? name : package + "/" + name, *max});
    files.push_back(zone / "energy_uj");
  }
  if (domains.empty()) {
    why_not = dir.string() + ": no intel-rapl package zone (no RAPL driver, or not exposed to this machine)";
    return nullptr;
  }
  return checked(std::make_unique<FileReader>("rapl", domains, files), why_not);
}

std::unique_ptr<Reader> open_hwmon(const fs::path& root, std::string& why_not) {
  const fs::path dir = root / "sys/class/hwmon";
  struct Sensor {
    std::string name;
    fs::path file;
  };
  std::vector<Sensor> sensors;
  for (const fs::path& hwmon : sorted_entries(dir, std::regex(R"(hwmon\d+)"))) {
    std::string chip = sysfs::read_line(hwmon / "name");
    if (chip.empty()) chip = hwmon.filename().string();
    for (const fs::path& base : {hwmon, hwmon / "device"}) {  // older drivers keep them in device/
      for (const fs::path& input : sorted_entries(base, std::regex(R"(energy\d+_input)"))) {
        const std::string stem = input.filename().string().substr(0, input.filename().string().find('_'));
        std::string label = sysfs::read_line(base / (stem + "_label"));
        sensors.push_back({chip + "/" + (label.empty() ? stem : label), input});
      }
    }
  }
  // amd_energy reports every core and every socket: the sockets already hold the cores.
  const bool sockets = std::ranges::any_of(sensors, [](const Sensor& s) { return s.name.find("/Esocket") != std::string::npos; });
  std::vector<Domain> domains;
  std::vector<fs::path> files;
  for (const Sensor& s : sensors) {
    if (sockets && s.name.find("/Ecore") != std::string::npos) continue;
    domains.push_back({s.name, kNoWrap});
    files.push_back(s.file);
  }
  if (domains.empty()) {
    why_not = dir.string() + ": no energy*_input sensor";
    return nullptr;
  }
  return checked(std::make_unique<FileReader>("hwmon", domains, files), why_not);
}

std::uint64_t counter_delta(std::uint64_t before, std::uint64_t after, std::uint64_t max_uj) {
  if (after >= before) return after - before;
  if (max_uj == kNoWrap) return 0;  // a counter that never wraps went back: it was reset, count nothing
  // Wrapped once (the caller reads far more often than a full range takes): up to the top, then
  // from 0.
  return (max_uj - before) + after;
}

}  // namespace ellm::energy
