#include "core/thread_pool.h"

#include <immintrin.h>

#include <algorithm>

namespace smoe {
namespace {
constexpr int kSpinIterations = 1 << 15;  // 0.3–1 ms of pause instructions
}

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
  // Spinning only pays when every thread has a core of its own.
  const unsigned hw = std::thread::hardware_concurrency();
  spin_ = hw == 0 || static_cast<unsigned>(n_threads_) <= hw ? kSpinIterations : 0;
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this] { worker(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_parts() {
  for (int p = next_.fetch_add(1); p < n_threads_; p = next_.fetch_add(1)) {
    (*job_)(p);
    done_.fetch_add(1, std::memory_order_release);
  }
}

void ThreadPool::worker() {
  uint64_t seen = 0;
  for (;;) {
    uint64_t g = generation_.load(std::memory_order_acquire);
    for (int spin = 0; g == seen && spin < spin_; ++spin) {
      _mm_pause();
      g = generation_.load(std::memory_order_acquire);
    }
    if (g == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      g = generation_.load(std::memory_order_acquire);
    }
    seen = g;
    if (stop_.load(std::memory_order_acquire)) return;
    run_parts();
  }
}

void ThreadPool::run_on_all(FunctionRef<void(int)> fn) {
  if (n_threads_ == 1) {
    fn(0);
    return;
  }
  done_.store(0);
  job_ = &fn;
  next_.store(0);  // publishes the job: a claim reads it after this
  {
    // Under the lock so a worker deciding to sleep cannot miss the new generation.
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();
  run_parts();
  // Parts other threads claimed are running; wait for them, spinning first, then yielding.
  for (int spin = 0; done_.load(std::memory_order_acquire) != n_threads_; ++spin) {
    if (spin < spin_)
      _mm_pause();
    else
      std::this_thread::yield();
  }
}

void ThreadPool::parallel_for(int64_t n, FunctionRef<void(int, int64_t, int64_t)> fn) {
  parallel_for(n, 1, fn);
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              FunctionRef<void(int, int64_t, int64_t)> fn) {
  if (n <= 0) return;
  const int64_t parts = std::max<int64_t>(1, n / std::max<int64_t>(1, grain));
  const int nt = static_cast<int>(parts < n_threads_ ? parts : n_threads_);
  if (nt == 1) {
    fn(0, 0, n);
    return;
  }
  run_on_all([&](int t) {
    if (t >= nt) return;
    fn(t, n * t / nt, n * (t + 1) / nt);
  });
}

void ThreadPool::parallel_for_dynamic(int64_t n, int per_thread,
                                      FunctionRef<void(int, int64_t, int64_t)> fn) {
  if (n <= 0) return;
  const int64_t chunks =
      std::min<int64_t>(n, static_cast<int64_t>(n_threads_) * std::max(1, per_thread));
  if (n_threads_ == 1 || chunks == 1) {
    fn(0, 0, n);
    return;
  }
  std::atomic<int64_t> next{0};
  run_on_all([&](int t) {
    for (int64_t c = next.fetch_add(1, std::memory_order_relaxed); c < chunks;
         c = next.fetch_add(1, std::memory_order_relaxed))
      fn(t, n * c / chunks, n * (c + 1) / chunks);
  });
}

void ThreadPool::parallel_for_guided(int64_t n, int64_t min_chunk,
                                     FunctionRef<void(int, int64_t, int64_t)> fn) {
  if (n <= 0) return;
  min_chunk = std::max<int64_t>(1, min_chunk);
  if (n_threads_ == 1 || n <= min_chunk) {
    fn(0, 0, n);
    return;
  }
  const int64_t ways = 2 * static_cast<int64_t>(n_threads_);
  std::atomic<int64_t> next{0};
  run_on_all([&](int t) {
    for (int64_t b = next.load(std::memory_order_relaxed); b < n;) {
      const int64_t e = std::min(n, b + std::max(min_chunk, (n - b) / ways));
      if (next.compare_exchange_weak(b, e, std::memory_order_relaxed)) {
        fn(t, b, e);
        b = next.load(std::memory_order_relaxed);
      }
    }
  });
}

}  // namespace smoe
