#include "core/thread_pool.h"

namespace smoe {

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(int)>* job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
    }
    (*job)(index);
    if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mu_);
      cv_.notify_all();
    }
  }
}

void ThreadPool::run_on_all(const std::function<void(int)>& fn) {
  if (n_threads_ == 1) {
    fn(0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &fn;
    remaining_.store(n_threads_ - 1, std::memory_order_release);
    ++generation_;
  }
  cv_.notify_all();
  fn(0);
  // Spin briefly (workers usually finish together), then sleep on the condition variable.
  for (int spin = 0; spin < 20000 && remaining_.load(std::memory_order_acquire) != 0; ++spin) {
  }
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return remaining_.load(std::memory_order_acquire) == 0; });
  job_ = nullptr;
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int, int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  const int nt = static_cast<int>(n < n_threads_ ? n : n_threads_);
  if (nt == 1) {
    fn(0, 0, n);
    return;
  }
  run_on_all([&](int t) {
    if (t >= nt) return;
    const int64_t begin = n * t / nt, end = n * (t + 1) / nt;
    fn(t, begin, end);
  });
}

}  // namespace smoe
