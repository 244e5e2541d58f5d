// The energy readers against fake sysfs trees and a fake NVML library: RAPL wraparound, sources
// that cannot be read (the meter falls back and says why), missing domains, hwmon, the estimate.
#include <stdlib.h>

#include <cmath>

#include "metrics/energy.hpp"
#include "metrics/energy_meter.hpp"
#include "metrics/sampler.hpp"
#include "support/fake_tree.hpp"

namespace ellm::energy {
namespace {

class Energy : public ellm::testing::FakeTree {
 protected:
  // A RAPL zone: name, counter, range.
  void zone(const std::string& dir, const std::string& name, std::uint64_t uj, std::uint64_t max_uj) {
    put("sys/class/powercap/" + dir + "/name", name + "\n");
    put("sys/class/powercap/" + dir + "/energy_uj", std::to_string(uj) + "\n");
    put("sys/class/powercap/" + dir + "/max_energy_range_uj", std::to_string(max_uj) + "\n");
  }
  void proc_stat(std::uint64_t busy, std::uint64_t idle) {
    // user nice system idle iowait irq softirq steal
    put("proc/stat", "cpu  " + std::to_string(busy) + " 0 0 " + std::to_string(idle) + " 0 0 0 0 0 0\ncpu0 1 2 3\n");
  }
  const std::string kNoNvml = "/nonexistent/libnvidia-ml.so.1";
};

TEST(CounterDelta, HandlesOneWrap) {
  EXPECT_EQ(counter_delta(100, 250, 1000), 150u);
  EXPECT_EQ(counter_delta(900, 100, 1000), 200u);  // 900 → 1000 (wrap) → 100
  EXPECT_EQ(counter_delta(500, 400, kNoWrap), 0u);  // a counter that never wraps was reset
}

TEST_F(Energy, RaplReadsPackagesAndDramButNotCoreUncoreOrPsys) {
  zone("intel-rapl:0", "package-0", 1000, 262143328850);
  zone("intel-rapl:0:0", "core", 10, 262143328850);
  zone("intel-rapl:0:1", "dram", 20, 65712999613);
  zone("intel-rapl:1", "package-1", 3000, 262143328850);
  zone("intel-rapl:2", "psys", 9000, 262143328850);
  zone("intel-rapl-mmio:0", "package-0", 1000, 262143328850);  // the same package via MMIO
  std::string why;
  const auto rapl = open_rapl(root_, why);
  ASSERT_NE(rapl, nullptr) << why;
  ASSERT_EQ(rapl->domains().size(), 3u);
  EXPECT_EQ(rapl->domains()[0].name, "package-0");
  EXPECT_EQ(rapl->domains()[1].name, "package-0/dram");
  EXPECT_EQ(rapl->domains()[1].max_uj, 65712999613u);
  EXPECT_EQ(rapl->domains()[2].name, "package-1");
  std::vector<std::uint64_t> uj;
  ASSERT_TRUE(rapl->read(uj, why));
  EXPECT_EQ(uj, (std::vector<std::uint64_t>{1000, 20, 3000}));
}

TEST_F(Energy, MeterAccumulatesAcrossARaplWraparound) {
  zone("intel-rapl:0", "package-0", 999'000'000, 1'000'000'000);  // 1 J below the wrap
  Meter meter(root_, kNoNvml);
  meter.begin();
  put("sys/class/powercap/intel-rapl:0/energy_uj", "500000\n");  // wrapped: +1 J +0.5 J
  meter.sample(1.0);
  put("sys/class/powercap/intel-rapl:0/energy_uj", "900000\n");  // +0.4 J
  const nlohmann::json r = meter.finish(2.0, 1.0);
  EXPECT_NEAR(r["joules"].get<double>(), 1.9, 1e-9);
  EXPECT_NEAR(r["aec_w"].get<double>(), 0.95, 1e-9);
  EXPECT_EQ(r["sources"], nlohmann::json({"rapl"}));
  EXPECT_FALSE(r["estimated"].get<bool>());
  ASSERT_EQ(r["samples"]["watts"].size(), 2u);
  EXPECT_NEAR(r["samples"]["watts"][0].get<double>(), 1.5, 1e-9);
  EXPECT_NEAR(r["samples"]["watts"][1].get<double>(), 0.4, 1e-9);
  EXPECT_EQ(r["fallbacks"].size(), 1u);  // only NVML, which is absent
  EXPECT_EQ(r["fallbacks"][0]["source"], "nvml");
}

// The sampler reads the meter at every window edge, so each window gets exactly the energy the
// counter moved while it lasted (the period is long enough that no tick falls in between).
TEST_F(Energy, SamplerSplitsTheEnergyAtEveryWindowEdge) {
  zone("intel-rapl:0", "package-0", 0, 1'000'000'000);
  Meter meter(root_, kNoNvml);
  Sampler sampler(600.0, &meter);
  put("sys/class/powercap/intel-rapl:0/energy_uj", "250000\n");  // set-up: 0.25 J
  sampler.enter(Window::steps);
  put("sys/class/powercap/intel-rapl:0/energy_uj", "1250000\n");  // steps: 1 J
  sampler.enter(Window::evaluation);
  put("sys/class/powercap/intel-rapl:0/energy_uj", "5250000\n");  // evaluation: 4 J
  sampler.enter(Window::steps);
  sampler.enter(Window::steps);  // already there: no edge
  put("sys/class/powercap/intel-rapl:0/energy_uj", "5750000\n");  // steps: 0.5 J
  sampler.enter(Window::finish);
  put("sys/class/powercap/intel-rapl:0/energy_uj", "5800000\n");  // finish: 0.05 J
  const Sampler::Result r = sampler.stop();
  ASSERT_EQ(r.series.t_s.size(), 6u);  // start, 4 edges, stop
  const auto w = summarize_windows(r.series);
  EXPECT_NEAR(w[int(Window::setup)].joules, 0.25, 1e-9);
  EXPECT_NEAR(w[int(Window::steps)].joules, 1.5, 1e-9);
  EXPECT_NEAR(w[int(Window::evaluation)].joules, 4.0, 1e-9);
  EXPECT_NEAR(w[int(Window::finish)].joules, 0.05, 1e-9);
  EXPECT_EQ(w[int(Window::checkpoint)].joules, 0.0);
  EXPECT_NEAR(r.energy["joules"].get<double>(), 5.8, 1e-9);  // the whole run: every window's sum
  double seconds = 0;
  for (const WindowFigures& f : w) seconds += f.seconds;
  EXPECT_NEAR(seconds, r.series.t_s.back(), 1e-12);
}

TEST_F(Energy, UnreadableRaplFallsBackToHwmonWithTheReason) {
  zone("intel-rapl:0", "package-0", 1000, 262143328850);
  std::filesystem::remove(root_ / "sys/class/powercap/intel-rapl:0/energy_uj");
  std::filesystem::create_directory(root_ / "sys/class/powercap/intel-rapl:0/energy_uj");  // read → EISDIR
  put("sys/class/hwmon/hwmon0/name", "amd_energy\n");
  put("sys/class/hwmon/hwmon0/energy1_input", "5000000\n");
  put("sys/class/hwmon/hwmon0/energy1_label", "Ecore000\n");
  put("sys/class/hwmon/hwmon0/energy17_input", "9000000\n");
  put("sys/class/hwmon/hwmon0/energy17_label", "Esocket0\n");
  Meter meter(root_, kNoNvml);
  meter.begin();
  put("sys/class/hwmon/hwmon0/energy17_input", "12000000\n");  // +3 J on the socket
  put("sys/class/hwmon/hwmon0/energy1_input", "9000000\n");    // a core: inside the socket's figure
  const nlohmann::json r = meter.finish(1.0, 0.1);
  EXPECT_EQ(r["sources"], nlohmann::json({"hwmon"}));
  ASSERT_EQ(r["domains"].size(), 1u);
  EXPECT_EQ(r["domains"][0]["name"], "amd_energy/Esocket0");
  EXPECT_NEAR(r["joules"].get<double>(), 3.0, 1e-9);
  EXPECT_EQ(r["fallbacks"][0]["source"], "rapl");
  EXPECT_EQ(r["fallbacks"][0]["reason"],
            (root_ / "sys/class/powercap/intel-rapl:0/energy_uj").string() + ": Is a directory");
}

TEST_F(Energy, AZoneWithoutItsRangeIsRefused) {
  zone("intel-rapl:0", "package-0", 1000, 262143328850);
  std::filesystem::remove(root_ / "sys/class/powercap/intel-rapl:0/max_energy_range_uj");
  std::string why;
  EXPECT_EQ(open_rapl(root_, why), nullptr);
  EXPECT_EQ(why, (root_ / "sys/class/powercap/intel-rapl:0/max_energy_range_uj").string() +
                     ": No such file or directory");
}

TEST_F(Energy, NoDomainsAtAllSaysSo) {
  std::string why;
  EXPECT_EQ(open_rapl(root_, why), nullptr);
  EXPECT_EQ(why, (root_ / "sys/class/powercap").string() +
                     ": no intel-rapl package zone (no RAPL driver, or not exposed to this machine)");
  EXPECT_EQ(open_hwmon(root_, why), nullptr);
  EXPECT_EQ(why, (root_ / "sys/class/hwmon").string() + ": no energy*_input sensor");
}

TEST_F(Energy, GarbageInACounterIsReported) {
  zone("intel-rapl:0", "package-0", 1000, 262143328850);
  put("sys/class/powercap/intel-rapl:0/energy_uj", "n/a\n");
  std::string why;
  EXPECT_EQ(open_rapl(root_, why), nullptr);
  EXPECT_NE(why.find("energy_uj: not an unsigned integer: \"n/a"), std::string::npos) << why;
}

TEST_F(Energy, WithoutCountersTheCpuIsEstimatedFromUtilization) {
  proc_stat(100, 900);
  Meter meter(root_, kNoNvml);
  meter.set_model(power_model("AMD EPYC 9654", 4, 50, 250));
  meter.begin();
  proc_stat(600, 1400);  // 500 busy of 1000 ticks: u = 0.5
  const nlohmann::json r = meter.finish(2.0, 0.5);
  EXPECT_TRUE(r["estimated"].get<bool>());
  EXPECT_EQ(r["sources"], nlohmann::json({"estimate"}));
  EXPECT_NEAR(r["joules"].get<double>(), (50 + 200 * 0.5) * 2.0, 1e-9);
  EXPECT_EQ(r["model"]["p_idle_w"], 50.0);
  EXPECT_EQ(r["model"]["constants_source"], "set by the job (metrics.p_idle_w, metrics.p_max_w)");
  EXPECT_EQ(r["fallbacks"].size(), 3u);  // rapl, hwmon, nvml, each with its reason
}

// /proc/stat moves in clock ticks: a reading within the same tick is not an idle interval; it is
// charged at the last utilisation seen (P_idle before the first).
TEST_F(Energy, EstimateWithinOneClockTickKeepsTheLastUtilisation) {
  proc_stat(100, 900);
  Meter meter(root_, kNoNvml);
  meter.set_model(power_model("x", 4, 50, 250));
  meter.begin();
  meter.sample(0.5);     // no tick since begin: P_idle
  EXPECT_NEAR(meter.joules(), 50 * 0.5, 1e-9);
  proc_stat(600, 1400);  // u = 0.5
  meter.sample(1.0);
  EXPECT_NEAR(meter.joules(), 25 + (50 + 200 * 0.5) * 0.5, 1e-9);
  meter.sample(1.2);     // no tick: u = 0.5 carries on, not idle
  const nlohmann::json r = meter.finish(1.25, 0.5);
  EXPECT_NEAR(r["joules"].get<double>(), 25 + 150 * 0.75, 1e-9);
}

TEST(PowerModel, DefaultsPerCpuModelScaleWithCores) {
  const PowerModel epyc = power_model("AMD EPYC", 2, 0, 0);
  EXPECT_NEAR(epyc.p_max_w, 7.5, 1e-12);
  EXPECT_NEAR(epyc.p_idle_w, 2.2, 1e-12);
  EXPECT_NE(epyc.source.find("AMD EPYC 9654"), std::string::npos);
  const PowerModel other = power_model("Some RISC-V part", 10, 0, 0);
  EXPECT_NEAR(other.p_max_w, 60, 1e-12);
  EXPECT_NEAR(power_w(other, 0.25), 15 + 45 * 0.25, 1e-12);
}

// ---- NVML through the fake library the tests build ----

TEST(Nvml, ReadsEveryGpusEnergy) {
  std::string why;
  const auto nvml = open_nvml(ELLM_FAKE_NVML, why);
  ASSERT_NE(nvml, nullptr) << why;
  ASSERT_EQ(nvml->domains().size(), 2u);
  EXPECT_EQ(nvml->domains()[1].name, "nvml1 Fake GPU 1");
  std::vector<std::uint64_t> a, b;
  ASSERT_TRUE(nvml->read(a, why));
  ASSERT_TRUE(nvml->read(b, why));
  EXPECT_EQ(b[0] - a[0], 1'000'000u);  // 1 J in µJ
  EXPECT_EQ(b[1] - a[1], 2'000'000u);
}

TEST(Nvml, FailuresSayWhy) {
  std::string why;
  EXPECT_EQ(open_nvml("/nonexistent/libnvidia-ml.so.1", why), nullptr);
  EXPECT_NE(why.find("/nonexistent/libnvidia-ml.so.1: cannot load"), std::string::npos) << why;
  setenv("FAKE_NVML_FAIL_INIT", "1", 1);
  why.clear();
  EXPECT_EQ(open_nvml(ELLM_FAKE_NVML, why), nullptr);
  unsetenv("FAKE_NVML_FAIL_INIT");
  EXPECT_EQ(why, "nvmlInit_v2: Unknown Error (error 999)");
  setenv("FAKE_NVML_DEVICES", "0", 1);
  why.clear();
  EXPECT_EQ(open_nvml(ELLM_FAKE_NVML, why), nullptr);
  unsetenv("FAKE_NVML_DEVICES");
  EXPECT_EQ(why, "NVML sees no GPU");
}

TEST_F(Energy, GpusAreMeasuredBesideTheCpuEstimate) {
  proc_stat(0, 1000);
  Meter meter(root_, ELLM_FAKE_NVML);
  meter.set_model(power_model("x", 1, 10, 20));
  meter.begin();
  proc_stat(0, 2000);  // idle: the CPU draws P_idle
  const nlohmann::json r = meter.finish(1.0, 1.0);
  EXPECT_EQ(r["sources"], nlohmann::json({"estimate", "nvml"}));
  EXPECT_TRUE(r["estimated"].get<bool>());
  ASSERT_EQ(r["domains"].size(), 3u);
  EXPECT_NEAR(r["domains"][0]["joules"].get<double>(), 10.0, 1e-9);
  EXPECT_NEAR(r["domains"][1]["joules"].get<double>(), 1.0, 1e-9);  // one read after begin
  EXPECT_NEAR(r["domains"][2]["joules"].get<double>(), 2.0, 1e-9);
  EXPECT_NEAR(r["joules"].get<double>(), 13.0, 1e-9);
  EXPECT_FALSE(r["partial"].get<bool>());  // the model covers every CPU, NVML both GPUs
  EXPECT_EQ(r["coverage"]["cpu"], "modelled");
}

// ---- partial energy: a record that leaves out some of the node's devices says so ----

TEST_F(Energy, GpuCountersWithoutAnyCpuFigureArePartial) {
  // No CPU counter, and /proc/stat unreadable: the model cannot run either.
  Meter meter(root_, ELLM_FAKE_NVML, {1, 2});
  meter.begin();
  const nlohmann::json r = meter.finish(1.0, 1.0);
  EXPECT_EQ(r["sources"], nlohmann::json({"nvml"}));
  EXPECT_NEAR(r["joules"].get<double>(), 3.0, 1e-9);  // the GPUs only
  EXPECT_TRUE(r["partial"].get<bool>());
  EXPECT_EQ(r["coverage"]["cpu"], "none");
  ASSERT_EQ(r["coverage"]["missing"].size(), 1u);
  EXPECT_EQ(r["coverage"]["missing"][0].get<std::string>().rfind("the CPUs: no CPU counter and no power model", 0), 0u)
      << r["coverage"]["missing"][0];
}

TEST_F(Energy, RaplOnOnePackageOfTwoIsPartial) {
  zone("intel-rapl:0", "package-0", 1000, 262143328850);
  zone("intel-rapl:0:0", "dram", 1000, 262143328850);
  Meter two(root_, kNoNvml, {2, 0});
  two.begin();
  nlohmann::json r = two.finish(1.0, 1.0);
  EXPECT_TRUE(r["partial"].get<bool>());
  EXPECT_EQ(r["coverage"]["cpu_packages_measured"], 1);
  EXPECT_EQ(r["coverage"]["missing"][0], "1 of the node's 2 CPU packages: no counter for them");
  zone("intel-rapl:1", "package-1", 1000, 262143328850);
  Meter both(root_, kNoNvml, {2, 0});
  both.begin();
  r = both.finish(1.0, 1.0);
  EXPECT_FALSE(r["partial"].get<bool>());
  EXPECT_EQ(r["coverage"]["cpu"], "measured");
  EXPECT_TRUE(r["coverage"]["missing"].empty());
}

TEST_F(Energy, GpusWithoutACounterArePartial) {
  zone("intel-rapl:0", "package-0", 1000, 262143328850);
  Meter meter(root_, kNoNvml, {1, 4});  // four GPUs in the topology, no NVML
  meter.begin();
  nlohmann::json r = meter.finish(1.0, 1.0);
  EXPECT_TRUE(r["partial"].get<bool>());
  EXPECT_EQ(r["coverage"]["gpus_measured"], 0);
  EXPECT_EQ(r["coverage"]["missing"][0], "4 of the node's 4 GPUs: no energy counter (NVML covers NVIDIA GPUs only)");
  Meter unknown(root_, kNoNvml);  // topology not given: nothing to compare with
  unknown.begin();
  EXPECT_FALSE(unknown.finish(1.0, 1.0)["partial"].get<bool>());
}

}  // namespace
}  // namespace ellm::energy
