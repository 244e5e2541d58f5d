// The cost of one sample of each sampler (docs/PERFORMANCE.md): what a rank's sampler thread
// reads every period (resident set, CPU time) and what the node's lowest rank adds (its energy
// sources; on a machine without counters, /proc/stat for the estimate).
//
//   build/bench/bench_sampler
#include <benchmark/benchmark.h>

#include "metrics/cpu.hpp"
#include "metrics/energy_meter.hpp"
#include "metrics/memory.hpp"
#include "metrics/sysfs.hpp"

namespace {

void BM_RankSample(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(ellm::resident_bytes());
    benchmark::DoNotOptimize(ellm::process_cpu_seconds());
  }
}
BENCHMARK(BM_RankSample);

void BM_NodeEnergySample(benchmark::State& state) {
  ellm::energy::Meter meter(ellm::sysfs::root_dir(), "libnvidia-ml.so.1");
  meter.set_model(ellm::energy::power_model("bench", 1, 1, 2));
  meter.begin();
  double t = 0;
  for (auto _ : state) meter.sample(t += 0.1);
}
BENCHMARK(BM_NodeEnergySample);

}  // namespace

BENCHMARK_MAIN();
