// A persistent pool of worker threads with a low-latency hand-off: between jobs the workers spin
// briefly on a generation counter (a forward pass issues hundreds of jobs per token), then sleep.
// The calling thread takes part in the work, so a pool of N threads has N-1 workers.
//
// A job is N parts, and whichever thread comes first takes the next part: when a worker is not
// running (another process, or the server's connection threads, took its core), the threads
// that are running do its part instead of waiting for it to be scheduled again.
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

// Work (multiply-adds, or element operations) below which a job is not worth sharing: handing a
// part to another thread costs microseconds, and on a busy machine a part given to a thread with
// no core holds up the others until it is scheduled (a tiny model ran 2-4x slower on 2 threads
// than on 1 beside one busy process).
inline constexpr int64_t kMinSharedWork = int64_t{1} << 18;

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // fn(part, begin, end) over an even split of [0, n) into min(n, size()) contiguous parts;
  // part < size(), and no two threads run the same part at once, so per-thread scratch may be
  // indexed by it. Not re-entrant: call from one thread at a time.
  void parallel_for(int64_t n, FunctionRef<void(int, int64_t, int64_t)> fn);
  // The same with no more parts than leave each at least `grain` items: a job too small to share
  // runs on the calling thread alone, as part 0.
  void parallel_for(int64_t n, int64_t grain, FunctionRef<void(int, int64_t, int64_t)> fn);
  // fn(thread_index, begin, end) over [0, n) cut into about size()·per_thread contiguous chunks
  // that the threads claim in order as they finish the previous ones, so that a thread slowed
  // down (by memory, by another process) takes fewer. A thread may get several chunks.
  void parallel_for_dynamic(int64_t n, int per_thread, FunctionRef<void(int, int64_t, int64_t)> fn);
  // The same with chunks that shrink as the range runs out (guided): each claim takes what is
  // left divided by 2·size(), at least `min_chunk` items. Few chunk ends (where a kernel's
  // prefetch stops), and the last chunks small, so that no thread waits long for another.
  void parallel_for_guided(int64_t n, int64_t min_chunk,
                           FunctionRef<void(int, int64_t, int64_t)> fn);
  // fn(part) for every part in [0, size()), each once, spread over the threads.
  void run_on_all(FunctionRef<void(int)> fn);

 private:
  void worker();
  void run_parts();  // claims and runs parts of the open job until none is left
  int n_threads_;
  int spin_ = 0;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  // The job: its function (read only by a thread that claimed a part of it); next_ is the next
  // part to claim, done_ counts parts finished. The caller returns once every part is done: a
  // worker that wakes late only finds next_ past the end, or claims a part of the next job,
  // which the caller publishes by resetting next_ (after done_ and job_).
  const FunctionRef<void(int)>* job_ = nullptr;
  std::atomic<int> next_{0}, done_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace smoe
