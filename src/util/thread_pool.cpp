#include "util/thread_pool.hpp"

#include <chrono>
#include <stdexcept>
#include <string>

namespace ellm {
namespace {
thread_local bool t_in_job = false;

// How long a thread that ran out of work keeps checking for more before it sleeps on the condition
// variable (a worker for the next job, the caller for the last share). The checks read the atomic
// hints posted_ and finished_; the state under the mutex stays the only authority. On a VM an idle vCPU halts,
// and waking a sleeper there took tens of microseconds: a decode step's parallel GEMVs, a few
// hundred microseconds each and back to back, lost that on every call (docs/PERFORMANCE.md,
// "Decode prefetch"). The checks yield, so an oversubscribed core goes to whoever needs it.
constexpr auto kSpinBeforeSleep = std::chrono::microseconds(100);

template <class Ready>
void spin_briefly(Ready ready) {
  const auto until = std::chrono::steady_clock::now() + kSpinBeforeSleep;
  while (!ready() && std::chrono::steady_clock::now() < until) std::this_thread::yield();
}
}

ThreadPool::ThreadPool(int threads) { start(threads); }
ThreadPool::~ThreadPool() { stop(); }

void ThreadPool::set_threads(int threads) {
  if (threads < 1) throw std::invalid_argument("thread pool: threads must be >= 1, got " + std::to_string(threads));
  if (t_in_job) throw std::logic_error("thread pool: set_threads from inside a job");
  std::lock_guard<std::mutex> call(call_mutex_);
  if (threads == this->threads()) return;  // every run of a job sets it: keep the workers
  stop();
  start(threads);
}

void ThreadPool::start(int threads) {
  stopping_ = false;
  // A new worker waits for the next job, not the last one run by the previous workers.
  for (int i = 1; i < threads; i++) workers_.emplace_back([this, seen = generation_] { worker(seen); });
}

void ThreadPool::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
  workers_.clear();
}

// Claims shares of the current job until none is left. Shares are claimed, not assigned, so the
// caller (or any awake worker) takes those of a worker that has not woken up yet: on a busy machine
// a job never waits for a thread the scheduler has not run.
void ThreadPool::run_shares() {
  for (;;) {
    int share, shares;
    std::int64_t n;
    const RangeFn* fn;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (next_share_ >= shares_) return;
      share = next_share_++;
      shares = shares_, n = n_, fn = fn_;
    }
    const std::int64_t begin = n * share / shares, end = n * (share + 1) / shares;
    try {
      if (begin < end) (*fn)(begin, end);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
    int done;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done = ++done_shares_;
      if (done_shares_ == shares_) done_.notify_one();
    }
    // The hints are stored once the mutex is free, so a thread that sees one does not block on it.
    // A late store (this job's count landing after the next job reset it) only ends a spin early:
    // the predicate under the mutex decides.
    finished_.store(done, std::memory_order_release);
  }
}

void ThreadPool::worker(std::uint64_t seen) {
  t_in_job = true;  // a worker only ever runs jobs: its nested parallel_for runs inline
  for (;;) {
    spin_briefly([&] { return posted_.load(std::memory_order_acquire) != seen; });
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
    }
    run_shares();
  }
}

void ThreadPool::parallel_for(std::int64_t n, RangeFn fn) {
  if (n <= 0) return;
  if (t_in_job || workers_.empty() || n == 1) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> call(call_mutex_);
  std::uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    n_ = n;
    fn_ = &fn;
    shares_ = int(std::min<std::int64_t>(n, threads()));
    next_share_ = done_shares_ = 0;
    finished_.store(0, std::memory_order_relaxed);
    error_ = nullptr;
    generation = ++generation_;
  }
  posted_.store(generation, std::memory_order_release);
  wake_.notify_all();
  t_in_job = true;
  run_shares();
  t_in_job = false;
  const int shares = shares_;
  spin_briefly([&] { return finished_.load(std::memory_order_acquire) == shares; });
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [&] { return done_shares_ == shares_; });
  if (error_) std::rethrow_exception(error_);
}

bool inside_pool_job() { return t_in_job; }

ThreadPool& rank_pool() {
  static ThreadPool pool(1);
  return pool;
}

void parallel_items(std::int64_t n, std::int64_t cost_per_item, RangeFn fn) {
  if (n <= 0) return;
  if (n * cost_per_item < kParallelGrain) return fn(0, n);
  rank_pool().parallel_for(n, fn);
}

}  // namespace ellm
