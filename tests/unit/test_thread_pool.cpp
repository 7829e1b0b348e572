#include <gtest/gtest.h>

#include <atomic>

#include "core/thread_pool.h"

namespace smoe {

TEST(ThreadPool, CoversEveryIndexExactlyOnceAcrossManyJobs) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 7, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      for (int rep = 0; rep < 200; ++rep)
        pool.parallel_for(n, [&](int t, int64_t b, int64_t e) {
          EXPECT_LT(t, threads);
          for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
        });
      for (auto& h : hits) EXPECT_EQ(h.load(), 200);
    }
  }
}

TEST(ThreadPool, UsesExactlyTheRequestedThreads) {
  ThreadPool pool(3);
  std::atomic<int> mask{0};
  pool.run_on_all([&](int t) { mask.fetch_or(1 << t); });
  EXPECT_EQ(mask.load(), 0b111);
}

}  // namespace smoe
