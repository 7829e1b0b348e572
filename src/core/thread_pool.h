// A persistent pool of worker threads with a low-latency hand-off: between jobs the workers spin
// briefly on a generation counter (a forward pass issues hundreds of jobs per token), then sleep.
// The calling thread takes part in the work, so a pool of N threads has N-1 workers.
// No allocation per job: a job is a FunctionRef to the caller's callable, which lives on the
// caller's stack for the duration of the call.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "core/function_ref.h"

namespace smoe {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // fn(thread_index, begin, end) over an even split of [0, n) into min(n, size()) contiguous
  // parts; thread_index < size(). Not re-entrant: call from one thread at a time.
  void parallel_for(int64_t n, FunctionRef<void(int, int64_t, int64_t)> fn);
  // fn(thread_index, begin, end) over [0, n) cut into about size()·per_thread contiguous chunks
  // that the threads claim in order as they finish the previous ones, so that a thread slowed
  // down (by memory, by another process) takes fewer. A thread may get several chunks.
  void parallel_for_dynamic(int64_t n, int per_thread, FunctionRef<void(int, int64_t, int64_t)> fn);
  // fn(thread_index) on every thread.
  void run_on_all(FunctionRef<void(int)> fn);

 private:
  void worker(int index);
  int n_threads_;
  int spin_ = 0;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<const FunctionRef<void(int)>*> job_{nullptr};
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> remaining_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace smoe
