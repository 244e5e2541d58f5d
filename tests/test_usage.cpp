// What the per-rank sampler builds on: the memory available to a rank (cgroup or /proc/meminfo,
// from fake trees), node CPU utilization, the theoretical peak's factors, and the AMU / busy
// arithmetic over known series.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <thread>

#include "metrics/cpu.hpp"
#include "metrics/memory.hpp"
#include "metrics/peak.hpp"
#include "metrics/sampler.hpp"
#include "support/fake_tree.hpp"

namespace ellm {
namespace {

using Usage = ellm::testing::FakeTree;
constexpr std::uint64_t kGiB = 1ull << 30;

TEST_F(Usage, MemTotalIsSharedByTheRanksOnTheNode) {
  put("proc/meminfo", "MemTotal:       24684092 kB\nMemFree:  100 kB\n");
  put("proc/self/cgroup", "0::/\n");
  const MemoryLimit m = available_memory(root_, 2);
  EXPECT_EQ(m.bytes, 24684092ull * 1024 / 2);
  EXPECT_EQ(m.source, "/proc/meminfo MemTotal ÷ 2 rank(s) on the node");
}

TEST_F(Usage, ACgroupV2LimitBelowMemTotalWins) {
  put("proc/meminfo", "MemTotal: " + std::to_string(16 * kGiB / 1024) + " kB\n");
  put("proc/self/cgroup", "0::/slurm/job_7/step_0\n");
  put("sys/fs/cgroup/slurm/job_7/memory.max", std::to_string(4 * kGiB) + "\n");
  put("sys/fs/cgroup/slurm/job_7/step_0/memory.max", "max\n");  // unlimited here, limited above
  const MemoryLimit m = available_memory(root_, 4);
  EXPECT_EQ(m.bytes, kGiB);
  EXPECT_EQ(m.source, "cgroup limit " + (root_ / "sys/fs/cgroup/slurm/job_7/memory.max").string() +
                          " ÷ 4 rank(s) on the node");
}

TEST_F(Usage, AnUnlimitedCgroupV1FallsBackToMemTotal) {
  put("proc/meminfo", "MemTotal: 1048576 kB\n");
  put("proc/self/cgroup", "9:cpu:/\n4:memory:/process_api/abc\n");
  put("sys/fs/cgroup/memory/process_api/abc/memory.limit_in_bytes", "9223372036854771712\n");
  EXPECT_EQ(available_memory(root_, 1).bytes, kGiB);
  put("sys/fs/cgroup/memory/process_api/abc/memory.limit_in_bytes", std::to_string(kGiB / 2) + "\n");
  EXPECT_EQ(available_memory(root_, 1).bytes, kGiB / 2);
}

TEST_F(Usage, NoMeminfoIsUnknownWithTheReason) {
  const MemoryLimit m = available_memory(root_, 1);
  EXPECT_EQ(m.bytes, 0u);
  EXPECT_EQ(m.source, "unknown: " + (root_ / "proc/meminfo").string() + ": No such file or directory");
}

TEST_F(Usage, NodeUtilizationFromProcStat) {
  put("proc/stat", "cpu  100 0 50 800 40 5 5 20 0 0\n");
  std::string error;
  const auto a = read_node_cpu(root_, error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->busy, 160u);   // user + nice + system + irq + softirq
  EXPECT_EQ(a->total, 1020u); // + idle + iowait + steal
  const NodeCpuTimes b{a->busy + 300, a->total + 400};
  EXPECT_DOUBLE_EQ(utilization(*a, b), 0.75);
  EXPECT_DOUBLE_EQ(utilization(*a, *a), 0.0);
  put("proc/stat", "intr 1 2 3\n");
  EXPECT_FALSE(read_node_cpu(root_, error));
  EXPECT_EQ(error, (root_ / "proc/stat").string() + ": no \"cpu\" line with 8 counters");
}

TEST_F(Usage, TheoreticalPeakFromTheTableAndTheBaseClock) {
  // Sapphire Rapids: two 512-bit FMA pipes; intel_pstate's base_frequency is the all-core clock,
  // preferred to the single-core boost of cpuinfo_max_freq.
  put("proc/cpuinfo", "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\ncpu MHz\t\t: 2000.000\n"
                      "flags\t\t: fpu sse avx fma avx2 avx512f\n\nprocessor\t: 1\n");
  put("sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "3800000\n");  // kHz
  put("sys/devices/system/cpu/cpu0/cpufreq/base_frequency", "2100000\n");
  const TheoreticalPeak p = theoretical_peak(root_);
  EXPECT_EQ(p.microarchitecture, "Sapphire Rapids");
  EXPECT_EQ(p.simd_lanes, 16);
  EXPECT_EQ(p.fma_units, 2);
  EXPECT_EQ(p.fma_lanes, 16);
  EXPECT_DOUBLE_EQ(p.clock_hz, 2.1e9);
  EXPECT_EQ(p.clock_kind, "base");
  EXPECT_DOUBLE_EQ(p.flops_per_s_per_core, 2 * 16 * 2 * 2.1e9);
}

TEST_F(Usage, Zen4DoublePumpsAvx512AndNoCpufreqMeansTheHighestCpuMhz) {
  put("proc/cpuinfo", "vendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\ncpu MHz\t\t: 2400.0\nflags\t\t: sse avx fma avx512f\n\n"
                      "vendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\ncpu MHz\t\t: 2500.0\n");
  const TheoreticalPeak p = theoretical_peak(root_);
  EXPECT_EQ(p.simd_lanes, 16);
  EXPECT_EQ(p.fma_units, 2);
  EXPECT_EQ(p.fma_lanes, 8);  // 512-bit instructions on 256-bit pipes: 32 FLOP/cycle, as Zen 3
  EXPECT_DOUBLE_EQ(p.flops_per_s_per_core, 2 * 8 * 2 * 2.5e9);
  EXPECT_EQ(p.clock_kind, "reported");
}

TEST_F(Usage, Zen5ServerHasTwo512BitPipesMobileHas256) {
  put("proc/cpuinfo", "vendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\nflags\t\t: sse avx fma avx512f\n");
  put("sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "3000000\n");
  TheoreticalPeak p = theoretical_peak(root_);
  EXPECT_EQ(p.fma_lanes, 16);
  EXPECT_EQ(p.clock_kind, "max_boost");  // cpufreq without base/nominal: boost, peak overstated
  EXPECT_DOUBLE_EQ(p.flops_per_s_per_core, 2 * 16 * 2 * 3e9);
  put("proc/cpuinfo", "vendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 36\nflags\t\t: sse avx fma avx512f\n");
  p = theoretical_peak(root_);
  EXPECT_EQ(p.fma_lanes, 8);
}

TEST_F(Usage, SkylakeSpSilverHasOneAvx512Fma) {
  put("proc/cpuinfo", "vendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\nmodel name\t: Intel(R) Xeon(R) Silver 4114 "
                      "CPU @ 2.20GHz\ncpu MHz\t\t: 2200.0\nflags\t\t: sse avx fma avx512f\n");
  const TheoreticalPeak p = theoretical_peak(root_);
  EXPECT_EQ(p.fma_units, 1);
  EXPECT_DOUBLE_EQ(p.flops_per_s_per_core, 1 * 16 * 2 * 2.2e9);
}

TEST_F(Usage, UnknownCpuWithoutFmaAndUnknownClock) {
  put("proc/cpuinfo", "vendor_id\t: GenuineIntel\nflags\t\t: sse avx\n");
  const TheoreticalPeak p = theoretical_peak(root_);
  EXPECT_TRUE(p.microarchitecture.empty());
  EXPECT_EQ(p.simd_lanes, 8);
  EXPECT_EQ(p.fma_units, 1);
  EXPECT_EQ(p.flops_per_s_per_core, 0.0);
  EXPECT_EQ(p.clock_kind, "unknown");
}

TEST(Calibration, SizeGrowsWithTheCubeRootOfThreads) {
  EXPECT_EQ(calibration_size(1), 1024);
  EXPECT_EQ(calibration_size(2), 2048);
  EXPECT_EQ(calibration_size(8), 2048);
  EXPECT_EQ(calibration_size(64), 4096);
  EXPECT_EQ(calibration_size(1000), 4096);
}

TEST(MemorySummary, TimeWeightedOverKnownSeries) {
  RankSeries s;
  s.t_s = {0, 1, 3, 4};
  s.rss_bytes = {100, 200, 400, 999};  // the last sample closes the window
  s.tracked_bytes = {0, 50, 50, 50};
  s.cpu_s = {0, 1, 2, 4};
  const MemorySummary m = summarize_memory(s, 1000);
  EXPECT_DOUBLE_EQ(m.rss_mean_bytes, (100 * 1 + 200 * 2 + 400 * 1) / 4.0);
  EXPECT_DOUBLE_EQ(m.amu, 225.0 / 1000);
  EXPECT_EQ(m.rss_peak_bytes, 999u);
  EXPECT_EQ(m.tracked_peak_bytes, 50u);
  EXPECT_DOUBLE_EQ(busy_cores(s), 1.0);
  RankSeries one;
  one.t_s = {0};
  one.rss_bytes = {64};
  one.tracked_bytes = {0};
  one.cpu_s = {0};
  EXPECT_DOUBLE_EQ(summarize_memory(one, 128).amu, 0.5);
  EXPECT_DOUBLE_EQ(busy_cores(one), 0.0);
}

TEST(Windows, EachIntervalCountsInTheWindowItBeganIn) {
  RankSeries s;
  s.t_s = {0, 1, 3, 4, 6};
  s.rss_bytes = {100, 200, 400, 300, 999};
  s.tracked_bytes = {0, 0, 0, 0, 0};
  s.cpu_s = {0, 1, 1.5, 2.5, 3};
  s.window = {Window::setup, Window::steps, Window::evaluation, Window::steps, Window::finish};
  s.joules = {0, 10, 30, 35, 50};
  const auto w = summarize_windows(s);
  const WindowFigures& steps = w[int(Window::steps)];
  EXPECT_DOUBLE_EQ(steps.seconds, 2 + 2);
  EXPECT_DOUBLE_EQ(steps.rss_time, 200 * 2 + 300 * 2);
  EXPECT_DOUBLE_EQ(steps.cpu_s, 0.5 + 0.5);
  EXPECT_DOUBLE_EQ(steps.joules, 20 + 15);
  EXPECT_DOUBLE_EQ(w[int(Window::evaluation)].seconds, 1);
  EXPECT_DOUBLE_EQ(w[int(Window::evaluation)].joules, 5);
  EXPECT_DOUBLE_EQ(w[int(Window::setup)].joules, 10);
  EXPECT_DOUBLE_EQ(w[int(Window::finish)].seconds, 0);  // the last sample closes the series
  s.joules.clear();  // off the node's lowest rank
  EXPECT_DOUBLE_EQ(summarize_windows(s)[int(Window::steps)].joules, 0);
}

// Window edges from the main thread while the sampler thread ticks: each window gets at least
// the time spent in it, and the windows add up to the sampled time. (CPU time per window is
// checked exactly on a hand-made series above; live, on a loaded machine, it is too noisy.)
TEST(Sampler, WindowEdgesSplitTheTime) {
  Sampler sampler(0.01, nullptr);
  const auto pause = [](int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); };
  sampler.enter(Window::steps);
  pause(60);
  sampler.enter(Window::evaluation);
  pause(80);
  sampler.enter(Window::steps);
  pause(60);
  sampler.enter(Window::finish);
  const Sampler::Result r = sampler.stop();
  const auto w = summarize_windows(r.series);
  EXPECT_GE(w[int(Window::steps)].seconds, 0.12);
  EXPECT_GE(w[int(Window::evaluation)].seconds, 0.08);
  EXPECT_EQ(w[int(Window::warmup)].seconds, 0.0);
  EXPECT_EQ(w[int(Window::checkpoint)].seconds, 0.0);
  double seconds = 0;
  for (const WindowFigures& f : w) seconds += f.seconds;
  EXPECT_NEAR(seconds, r.series.t_s.back(), 1e-12);
  // every edge is a sample: 4 edges, the first and the last sample, and the ticks in between
  EXPECT_GE(r.series.t_s.size(), 6u);
  EXPECT_GT(std::count(r.series.window.begin(), r.series.window.end(), Window::evaluation), 0);
}

TEST(Sampler, SamplesOnItsPeriodAndSeesTrackedBytes) {
  Sampler sampler(0.01, nullptr);
  sampler.set_tracked_bytes(4096);
  const auto start = std::chrono::steady_clock::now(), until = start + std::chrono::milliseconds(80);
  std::timespec cpu0{}, cpu1{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu0);
  volatile double x = 0;
  while (std::chrono::steady_clock::now() < until) x = x + 1;  // keep a core busy
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu1);
  // The share of a core the loop actually got: all of one on a quiet machine, less when other
  // processes share the cores. The sampler must see at least half of it.
  const double share = (cpu1.tv_sec - cpu0.tv_sec + 1e-9 * (cpu1.tv_nsec - cpu0.tv_nsec)) /
                       std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const Sampler::Result r = sampler.stop();
  EXPECT_GE(r.series.t_s.size(), 5u);
  EXPECT_LE(r.series.t_s.size(), 12u);
  EXPECT_EQ(r.series.tracked_bytes.back(), 4096u);
  EXPECT_GT(r.series.rss_bytes.front(), 0u);
  EXPECT_GT(busy_cores(r.series), 0.5 * std::min(share, 1.0)) << "the loop got " << share << " of a core";
  EXPECT_TRUE(r.energy.is_null());
}

}  // namespace
}  // namespace ellm
