// ThreadSanitizer smoke test of the code that runs threads of its own (docs/RELIABILITY.md,
// "Sanitizers"), built with -fsanitize=thread inside the normal build so every test run (CI
// included) checks it for races without an instrumented build of the whole suite
// (scripts/sanitize.sh thread does that):
// - the sampler thread: the main thread marks window edges and sets the tracked bytes while two
//   samplers tick every 0.5 ms, one driving the energy meter on the real /proc/stat (the node's
//   lowest rank), one not;
// - the rank's thread pool: jobs of every size on 1-4 threads, resized between jobs, a share
//   that throws, a nested parallel_for;
// - the watchdog thread: started and stopped while the main thread reports progress and
//   collectives.
// Exits non-zero on a wrong result; TSan (halt_on_error=1) on a race.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <thread>
#include <vector>

#include "metrics/energy_meter.hpp"
#include "metrics/sampler.hpp"
#include "mpi/watchdog.hpp"
#include "util/thread_pool.hpp"

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAIL: %s\n", what);
    failures++;
  }
}

void sampler_against_the_main_thread() {
  using namespace ellm;
  energy::Meter meter("/", "/nonexistent/libnvidia-ml.so.1", {1, 0});
  meter.set_model(energy::power_model("x", 2, 10, 20));
  for (int run = 0; run < 5; run++) {
    Sampler leader(0.0005, &meter), other(0.0005, nullptr);
    for (int i = 0; i < 400; i++) {
      const Window w = static_cast<Window>(i % kWindows);
      leader.enter(w);
      other.enter(w);
      leader.set_tracked_bytes(i);
      other.set_tracked_bytes(i);
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    const Sampler::Result a = leader.stop(), b = other.stop();
    double seconds = 0;
    for (const WindowFigures& f : summarize_windows(a.series)) seconds += f.seconds;
    check(a.series.t_s.size() >= 400 && b.series.t_s.size() >= 400, "a sample at every window edge");
    check(seconds > 0.99 * a.series.t_s.back() && seconds < 1.01 * a.series.t_s.back(),
          "the windows sum to the sampled time");
  }
}

void thread_pool_jobs() {
  using namespace ellm;
  ThreadPool pool(1);
  std::vector<long> out(5000);
  for (int round = 0; round < 200; round++) {
    pool.set_threads(1 + round % 4);
    const std::int64_t n = 1 + round * 25;
    pool.parallel_for(n, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; i++) out[i] = i * round;
      pool.parallel_for(2, [](std::int64_t, std::int64_t) {});  // nested: runs inline
    });
    for (std::int64_t i = 0; i < n; i++) {
      if (out[i] != i * round) return check(false, "every item of a pool job written once");
    }
  }
  bool thrown = false;
  try {
    pool.parallel_for(8, [](std::int64_t b, std::int64_t) {
      if (b == 0) throw std::runtime_error("share 0");
    });
  } catch (const std::runtime_error&) {
    thrown = true;
  }
  check(thrown, "a share's exception reaches the caller");
}

void watchdog_against_the_main_thread() {
  // Checks every 0.25 s, so twice per run; it ends the process only if the main thread stalls for
  // a whole second.
  for (int run = 0; run < 3; run++) {
    const ellm::mpi::Watchdog watchdog(1.0, 0, "smoke");
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(600);
    while (std::chrono::steady_clock::now() < end) {
      ellm::mpi::collective_begins("MPI_Allreduce", 2);
      ellm::mpi::collective_ends();
      ellm::mpi::note_progress();
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
}

}  // namespace

int main() {
  sampler_against_the_main_thread();
  thread_pool_jobs();
  watchdog_against_the_main_thread();
  if (failures == 0) std::printf("threads_smoke: sampler, thread pool and watchdog: no failure\n");
  return failures == 0 ? 0 : 1;
}
