// A small persistent thread pool: the rank's worker threads for kernels that split their work
// (the GEMMs, attention, norms, activations, the cross-entropy, AdamW, the quantized matmuls). Workers sleep on a
// condition variable between jobs, after checking for the next one for 100 µs (never longer); the
// caller likewise checks for 100 µs for the last share before it sleeps. Every thread, the caller included,
// claims shares until none is left, so a job never waits for a worker that has not woken up yet.
// A parallel_for from inside a job runs inline (no nested parallelism).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <type_traits>
#include <mutex>
#include <thread>
#include <vector>

namespace ellm {

// A non-owning reference to a callable fn(begin, end), valid while the callable lives (a job is
// synchronous, so a lambda passed as an argument lives long enough). Unlike std::function it never
// allocates: a step that splits dozens of kernels over the threads allocates nothing.
class RangeFn {
 public:
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, RangeFn>>>
  RangeFn(F&& f) : object_((void*)std::addressof(f)), call_([](void* o, std::int64_t b, std::int64_t e) {
                     (*static_cast<std::remove_reference_t<F>*>(o))(b, e);
                   }) {}
  void operator()(std::int64_t b, std::int64_t e) const { call_(object_, b, e); }

 private:
  void* object_;
  void (*call_)(void*, std::int64_t, std::int64_t);
};

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
  void parallel_for(std::int64_t n, RangeFn fn);

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
  std::atomic<std::uint64_t> posted_{0};  // generation_, readable without the mutex while spinning
  std::atomic<int> finished_{0};          // done_shares_, likewise
  bool stopping_ = false;
  int shares_ = 0, next_share_ = 0, done_shares_ = 0;
  std::int64_t n_ = 0;
  const RangeFn* fn_ = nullptr;
  std::exception_ptr error_;
};

// The rank's pool: one thread (the caller) until set_threads says otherwise.
ThreadPool& rank_pool();

// True on a thread that is running a share of a job (a worker, or a caller inside parallel_for):
// a parallel_for there would run inline, so a kernel can choose its unsplit path instead.
bool inside_pool_job();

// fn(begin, end) over the independent items [0, n) on the rank's pool when the work is worth
// waking its threads for (n · cost_per_item ≥ kParallelGrain, cost in elementary operations),
// else on the caller. For kernels whose items do not interact: the results do not depend on the
// thread count.
inline constexpr std::int64_t kParallelGrain = std::int64_t(1) << 15;
void parallel_items(std::int64_t n, std::int64_t cost_per_item, RangeFn fn);

}  // namespace ellm
