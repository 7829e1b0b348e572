#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <mutex>
#include <numeric>
#include <thread>

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

TEST(ThreadPool, DynamicChunksCoverEveryIndexExactlyOnce) {
  for (int threads : {1, 2, 3})
    for (int per_thread : {1, 4, 16}) {
      ThreadPool pool(threads);
      for (int64_t n : {0, 1, 5, 1000}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        std::atomic<int64_t> calls{0};
        for (int rep = 0; rep < 50; ++rep)
          pool.parallel_for_dynamic(n, per_thread, [&](int t, int64_t b, int64_t e) {
            EXPECT_LT(t, threads);
            EXPECT_LT(b, e);
            ++calls;
            for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
          });
        for (auto& h : hits) EXPECT_EQ(h.load(), 50);
        EXPECT_EQ(calls.load(), threads == 1 ? (n > 0 ? 50 : 0)
                                             : 50 * std::min<int64_t>(n, threads * per_thread));
      }
    }
}

// Guided chunks: every index once, chunks of at least min_chunk items (the last may be short),
// never growing along the range, and few of them.
TEST(ThreadPool, GuidedChunksCoverEveryIndexOnceAndShrink) {
  for (int threads : {1, 2, 3})
    for (int64_t min_chunk : {1, 4, 64}) {
      ThreadPool pool(threads);
      for (int64_t n : {0, 1, 5, 1000, 3584}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        for (int rep = 0; rep < 20; ++rep) {
          std::mutex mu;
          std::vector<std::pair<int64_t, int64_t>> chunks;
          pool.parallel_for_guided(n, min_chunk, [&](int t, int64_t b, int64_t e) {
            EXPECT_LT(t, threads);
            EXPECT_LT(b, e);
            for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
            std::lock_guard<std::mutex> lock(mu);
            chunks.emplace_back(b, e);
          });
          std::sort(chunks.begin(), chunks.end());
          for (size_t i = 0; i < chunks.size(); ++i) {
            const int64_t size = chunks[i].second - chunks[i].first;
            if (chunks[i].second < n) {
              EXPECT_GE(size, std::min(n, min_chunk));
            }
            if (i > 0 && chunks[i].second < n) {
              EXPECT_LE(size, chunks[i - 1].second - chunks[i - 1].first);
            }
          }
          if (threads > 1 && n == 3584 && min_chunk == 4) {
            EXPECT_LT(chunks.size(), 80u);
          }
        }
        for (auto& h : hits) EXPECT_EQ(h.load(), 20);
      }
    }
}

// With a grain, a job has no more parts than leave each at least `grain` items; one too small to
// share runs on the calling thread alone, as part 0 with the whole range.
TEST(ThreadPool, GrainLimitsTheParts) {
  ThreadPool pool(4);
  const auto parts_of = [&](int64_t n, int64_t grain) {
    std::atomic<int> parts{0};
    std::atomic<int64_t> covered{0};
    pool.parallel_for(n, grain, [&](int t, int64_t b, int64_t e) {
      EXPECT_LT(t, 4);
      ++parts;
      covered += e - b;
    });
    EXPECT_EQ(covered.load(), n);
    return parts.load();
  };
  EXPECT_EQ(parts_of(100, 1000), 1);
  EXPECT_EQ(parts_of(100, 100), 1);
  EXPECT_EQ(parts_of(100, 50), 2);
  EXPECT_EQ(parts_of(100, 30), 3);
  EXPECT_EQ(parts_of(100, 1), 4);
  EXPECT_EQ(parts_of(100, 0), 4);  // no grain: every thread
  EXPECT_EQ(parts_of(0, 10), 0);
  const auto caller = std::this_thread::get_id();
  pool.parallel_for(10, 100, [&](int t, int64_t b, int64_t e) {
    EXPECT_EQ(std::this_thread::get_id(), caller);
    EXPECT_EQ(t, 0);
    EXPECT_EQ(b, 0);
    EXPECT_EQ(e, 10);
  });
}

TEST(ThreadPool, UsesExactlyTheRequestedThreads) {
  ThreadPool pool(3);
  std::atomic<int> mask{0};
  pool.run_on_all([&](int t) { mask.fetch_or(1 << t); });
  EXPECT_EQ(mask.load(), 0b111);
}

// A job whose captures exceed any small-buffer optimisation runs with the values it captured
// (jobs are references to the caller's callable, never copies that would need the heap).
TEST(ThreadPool, RunsJobsWithLargeCapturesByReference) {
  ThreadPool pool(2);
  std::array<int64_t, 32> weights{};
  std::iota(weights.begin(), weights.end(), 1);
  std::array<std::atomic<int64_t>, 2> sums{};
  const auto job = [weights, &sums](int t, int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) sums[static_cast<size_t>(t)] += weights[static_cast<size_t>(i)];
  };
  for (int rep = 0; rep < 100; ++rep) pool.parallel_for(32, job);
  EXPECT_EQ(sums[0].load() + sums[1].load(), 100 * (32 * 33 / 2));
  EXPECT_GT(sums[1].load(), 0);  // the worker took part
}

TEST(FunctionRef, CallsTheReferencedCallable) {
  int calls = 0;
  auto add = [&calls](int a, int b) {
    ++calls;
    return a + b;
  };
  const FunctionRef<int(int, int)> f = add;
  EXPECT_EQ(f(2, 3), 5);
  const FunctionRef<int(int, int)> g = f;  // copies the reference, not the callable
  EXPECT_EQ(g(4, 5), 9);
  EXPECT_EQ(calls, 2);
}

}  // namespace smoe
