#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>

#include "core/thread_pool.h"
#include "smoe/bench.h"

namespace smoe {

double measure_read_bandwidth(int threads, size_t bytes) {
  const size_t n = bytes / sizeof(uint64_t);
  std::unique_ptr<uint64_t[]> buf(new uint64_t[n]);
  ThreadPool pool(threads);
  // Touch the pages from the threads that will read them.
  pool.parallel_for(static_cast<int64_t>(n), [&](int, int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) buf[i] = static_cast<uint64_t>(i);
  });
  double best = 0;
  std::vector<uint64_t> sinks(static_cast<size_t>(threads) * 8);
  // Passes alternate between prefetching 4 KiB ahead into L2 and into L1, as the decode kernels
  // pull their next weight rows (kernels/cpu/gemv.h's PullTo), and the best pass counts: without
  // a prefetch one stream per core leaves bandwidth the kernels do use, and where a CPU reads
  // faster one way (L2 on the Xeon: 30.8–31.4 GB/s against 25.6–26.1 into L1, 2 threads; L1 on
  // the AMD EPYC) the other would let decode pass "100%".
  for (int pass = 0; pass < 8; ++pass) {
    const bool l1 = pass % 2 == 1;
    const auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(static_cast<int64_t>(n), [&](int t, int64_t b, int64_t e) {
      uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      int64_t i = b;
      for (; i + 4 <= e; i += 4) {
        if (i % 8 == 0) {
          if (l1)
            __builtin_prefetch(&buf[i] + 512, 0, 3);
          else
            __builtin_prefetch(&buf[i] + 512, 0, 2);
        }
        a0 ^= buf[i];
        a1 ^= buf[i + 1];
        a2 ^= buf[i + 2];
        a3 ^= buf[i + 3];
      }
      for (; i < e; ++i) a0 ^= buf[i];
      sinks[static_cast<size_t>(t) * 8] = a0 ^ a1 ^ a2 ^ a3;
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(n * sizeof(uint64_t)) / s / 1e9);
  }
  volatile uint64_t keep = sinks[0];
  (void)keep;
  return best;
}

}  // namespace smoe
