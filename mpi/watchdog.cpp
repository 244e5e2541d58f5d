#include "mpi/watchdog.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

namespace ellm::mpi {
namespace {

using Clock = std::chrono::steady_clock;

double now() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

// What this rank is doing; written by the thread that calls MPI, read by the watchdog thread.
std::atomic<const char*> g_collective{nullptr};  // the blocking collective running, or null
std::atomic<const char*> g_last{"none yet"};       // the last one that completed
std::atomic<int> g_ranks{0};                       // of its communicator
std::atomic<double> g_progress{0.0};               // when the rank last made progress

}  // namespace

void collective_begins(const char* name, int ranks) {
  g_ranks.store(ranks, std::memory_order_relaxed);
  g_collective.store(name, std::memory_order_release);
}

void collective_ends() {
  g_last.store(g_collective.exchange(nullptr, std::memory_order_acq_rel), std::memory_order_relaxed);
  note_progress();
}

void note_progress() { g_progress.store(now(), std::memory_order_release); }

struct Watchdog::State {
  std::mutex mutex;
  std::condition_variable stop_cv;
  bool stop = false;
  std::thread thread;
};

Watchdog::Watchdog(double timeout_s, int rank, std::string host) {
  if (timeout_s <= 0) return;
  note_progress();
  state_ = new State;
  // Checks a few times per timeout, so the job ends within 1.25 × timeout_s of the last progress.
  const auto period = std::chrono::duration<double>(timeout_s / 4);
  state_->thread = std::thread([this, timeout_s, rank, host = std::move(host), period] {
    std::unique_lock<std::mutex> lock(state_->mutex);
    while (!state_->stop_cv.wait_for(lock, period, [this] { return state_->stop; })) {
      const double idle = now() - g_progress.load(std::memory_order_acquire);
      if (idle < timeout_s) continue;
      const char* in = g_collective.load(std::memory_order_acquire);
      if (in) {
        std::fprintf(stderr,
                     "efficientllm: watchdog: rank %d on host %s has waited %.0f s in %s (a communicator of %d "
                     "ranks) with no progress (parallel.watchdog_s = %g): a peer rank is stalled or its link is "
                     "down; ending the job\n",
                     rank, host.c_str(), idle, in, g_ranks.load(), timeout_s);
      } else {
        std::fprintf(stderr,
                     "efficientllm: watchdog: rank %d on host %s has made no progress for %.0f s outside any "
                     "collective (the last one it completed: %s; parallel.watchdog_s = %g); ending the job\n",
                     rank, host.c_str(), idle, g_last.load(), timeout_s);
      }
      std::fflush(stderr);
      // Not MPI_Abort: MPI is initialised for one thread (MPI_THREAD_FUNNELED). A rank that ends
      // without MPI_Finalize makes the launcher (mpirun, srun) end the others.
      std::_Exit(kExitHang);
    }
  });
}

Watchdog::~Watchdog() {
  if (!state_) return;
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->stop = true;
  }
  state_->stop_cv.notify_all();
  state_->thread.join();
  delete state_;
}

}  // namespace ellm::mpi
