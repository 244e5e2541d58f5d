// A small persistent thread pool: the rank's worker threads for kernels that split their work
// (the quantized matmuls now; the training step is to adopt it, issue 15). Workers sleep on a
// condition variable between jobs (no spinning when idle). Every thread, the caller included,
// claims shares until none is left, so a job never waits for a worker that has not woken up yet.
// A parallel_for from inside a job runs inline (no nested parallelism).
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ellm {

class ThreadPool {
 public:
  explicit ThreadPool(int threads = 1);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return int(workers_.size()) + 1; }
  // Threads including the caller, >= 1; not from inside a job.
  void set_threads(int threads);

  // fn(begin, end) over contiguous shares of [0, n), as many as threads (fewer if n is small);
  // returns when all are done. The first exception thrown by a share is rethrown here.
  void parallel_for(std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& fn);

 private:
  void start(int threads);
  void stop();
  void worker(std::uint64_t seen);
  void run_shares();

  std::vector<std::thread> workers_;
  std::mutex call_mutex_;  // one job at a time (callers from several threads queue here)
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::uint64_t generation_ = 0;
  bool stopping_ = false;
  int shares_ = 0, next_share_ = 0, done_shares_ = 0;
  std::int64_t n_ = 0;
  const std::function<void(std::int64_t, std::int64_t)>* fn_ = nullptr;
  std::exception_ptr error_;
};

// The rank's pool: one thread (the caller) until set_threads says otherwise.
ThreadPool& rank_pool();

// fn(begin, end) over the independent items [0, n) on the rank's pool when the work is worth
// waking its threads for (n · cost_per_item ≥ kParallelGrain, cost in elementary operations),
// else on the caller. For kernels whose items do not interact: the results do not depend on the
// thread count.
inline constexpr std::int64_t kParallelGrain = std::int64_t(1) << 15;
void parallel_items(std::int64_t n, std::int64_t cost_per_item,
                    const std::function<void(std::int64_t, std::int64_t)>& fn);

}  // namespace ellm
