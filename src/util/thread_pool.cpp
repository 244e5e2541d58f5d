#include "util/thread_pool.hpp"

#include <stdexcept>
#include <string>

namespace ellm {
namespace {
thread_local bool t_in_job = false;
}

ThreadPool::ThreadPool(int threads) { start(threads); }
ThreadPool::~ThreadPool() { stop(); }

void ThreadPool::set_threads(int threads) {
  if (threads < 1) throw std::invalid_argument("thread pool: threads must be >= 1, got " + std::to_string(threads));
  if (t_in_job) throw std::logic_error("thread pool: set_threads from inside a job");
  std::lock_guard<std::mutex> call(call_mutex_);
  stop();
  start(threads);
}

void ThreadPool::start(int threads) {
  stopping_ = false;
  // A new worker waits for the next job, not the last one run by the previous workers.
  for (int i = 1; i < threads; i++) workers_.emplace_back([this, i, seen = generation_] { worker(i, seen); });
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

void ThreadPool::run_share(int index, int shares) {
  const std::int64_t begin = n_ * index / shares, end = n_ * (index + 1) / shares;
  try {
    if (begin < end) (*fn_)(begin, end);
  } catch (...) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!error_) error_ = std::current_exception();
  }
}

void ThreadPool::worker(int index, std::uint64_t seen) {
  t_in_job = true;  // a worker only ever runs jobs: its nested parallel_for runs inline
  for (;;) {
    int shares;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      shares = shares_;
    }
    if (index < shares) run_share(index, shares);
    std::lock_guard<std::mutex> lock(mutex_);
    if (--pending_ == 0) done_.notify_one();
  }
}

void ThreadPool::parallel_for(std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& fn) {
  if (n <= 0) return;
  if (t_in_job || workers_.empty() || n == 1) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> call(call_mutex_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    n_ = n;
    fn_ = &fn;
    shares_ = int(std::min<std::int64_t>(n, threads()));
    pending_ = int(workers_.size());
    error_ = nullptr;
    generation_++;
  }
  wake_.notify_all();
  t_in_job = true;
  run_share(0, shares_);
  t_in_job = false;
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [&] { return pending_ == 0; });
  if (error_) std::rethrow_exception(error_);
}

ThreadPool& rank_pool() {
  static ThreadPool pool(1);
  return pool;
}

}  // namespace ellm
