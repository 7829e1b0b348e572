// A persistent pool of worker threads. The calling thread takes part in the work, so a pool of N
// threads has N-1 workers. parallel_for splits [0, n) into contiguous chunks, one per thread, and
// returns when all are done. No allocation per call.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace smoe {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // fn(thread_index, begin, end) over an even split of [0, n); thread_index < size().
  // Not re-entrant: call from one thread at a time.
  void parallel_for(int64_t n, const std::function<void(int, int64_t, int64_t)>& fn);
  // fn(thread_index) on every thread.
  void run_on_all(const std::function<void(int)>& fn);

 private:
  void worker(int index);
  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  const std::function<void(int)>* job_ = nullptr;
  uint64_t generation_ = 0;
  std::atomic<int> remaining_{0};
  bool stop_ = false;
};

}  // namespace smoe
