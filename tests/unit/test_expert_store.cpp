// The expert store: whole experts read from the file into a few slots, pinned while used, evicted
// by LRU or LFU; its bytes equal the file's; its counters add up; Belady's optimal eviction on
// worked examples bounds what any policy misses.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "io_test_util.h"
#include "model/expert_store.h"

namespace smoe {
namespace {

using testing::TempDir;

constexpr int kLayers = 2, kExperts = 4;
constexpr int64_t kRows = 8, kCols = 64;

// A GGUF file holding, per layer, merged gate/up/down tensors (n_experts, rows, cols) of f32 whose
// every value says where it is: 1000·layer + 100·expert + 10·matrix + row/100.
struct ExpertFile {
  TempDir dir;
  std::string path = dir / "experts.gguf";
  std::unique_ptr<GgufFile> file;
  std::vector<LayerWeights> layers;

  static float value(int l, int e, int m, int64_t r) {
    return 1000.0f * l + 100.0f * e + 10.0f * m + static_cast<float>(r) / 100.0f;
  }

  ExpertFile() {
    GgufWriter w;
    for (int l = 0; l < kLayers; ++l)
      for (int m = 0; m < 3; ++m) {
        std::vector<float> v;
        for (int e = 0; e < kExperts; ++e)
          for (int64_t r = 0; r < kRows; ++r) v.insert(v.end(), kCols, value(l, e, m, r));
        w.add_tensor("blk." + std::to_string(l) + ".m" + std::to_string(m), DType::F32,
                     {kExperts, kRows, kCols}, v.data(), v.size() * sizeof(float));
      }
    w.write(path);
    file = GgufFile::open(path);
    for (int l = 0; l < kLayers; ++l) {
      LayerWeights lw;
      for (int e = 0; e < kExperts; ++e) {
        ExpertWeights ew;
        Matrix* ms[] = {&ew.gate, &ew.up, &ew.down};
        for (int m = 0; m < 3; ++m) {
          const TensorView* t = file->find("blk." + std::to_string(l) + ".m" + std::to_string(m));
          ms[m]->dtype = DType::F32;
          ms[m]->rows = kRows;
          ms[m]->cols = kCols;
          ms[m]->row_bytes = kCols * sizeof(float);
          ms[m]->data = t->data + e * kRows * kCols * sizeof(float);
        }
        lw.experts.push_back(ew);
      }
      layers.push_back(std::move(lw));
    }
  }
};

void expect_expert(const ExpertWeights& w, int l, int e) {
  const Matrix* ms[] = {&w.gate, &w.up, &w.down};
  for (int m = 0; m < 3; ++m)
    for (int64_t r = 0; r < kRows; ++r) {
      const float* row = reinterpret_cast<const float*>(ms[m]->row(r));
      ASSERT_EQ(row[0], ExpertFile::value(l, e, m, r)) << "layer " << l << " expert " << e;
      ASSERT_EQ(row[kCols - 1], ExpertFile::value(l, e, m, r));
    }
}

// Acquires and releases each (layer, expert) in turn; returns the misses.
uint64_t run(ExpertStore& s, const std::vector<std::pair<int, int>>& uses) {
  for (auto [l, e] : uses) {
    s.begin_layer(l, {e}, {});
    expect_expert(s.acquire(l, e), l, e);
    s.release(l, e);
  }
  uint64_t misses = 0;
  for (const ExpertLayerCounters& c : s.stats()) {
    EXPECT_EQ(c.hits + c.misses, c.uses);
    misses += c.misses;
  }
  return misses;
}

TEST(ExpertStore, ReadsTheFilesBytesIntoEachSlot) {
  ExpertFile f;
  for (bool direct : {true, false}) {
    ExpertStore s(*f.file, f.layers, {.slots = 3, .prefetch = false, .direct_io = direct});
    std::vector<std::pair<int, int>> all;
    for (int l = 0; l < kLayers; ++l)
      for (int e = 0; e < kExperts; ++e) all.push_back({l, e});
    EXPECT_EQ(run(s, all), 8u);
    const auto st = s.stats();
    EXPECT_EQ(st[0].bytes_read, 4u * 3 * kRows * kCols * sizeof(float));
    EXPECT_EQ(s.expert_bytes(), 3u * kRows * kCols * sizeof(float));
  }
}

TEST(ExpertStore, LruKeepsTheRecentLfuTheFrequent) {
  ExpertFile f;
  // 0 is used three times early on, then 1, 2, 3 once each, then 0 again: LRU has evicted it
  // (two slots), LFU has kept it.
  const std::vector<std::pair<int, int>> uses = {{0, 0}, {0, 0}, {0, 0}, {0, 1},
                                                 {0, 2}, {0, 3}, {0, 0}};
  ExpertStore lru(*f.file, f.layers,
                  {.slots = 2, .eviction = EvictionPolicy::Lru, .prefetch = false});
  ExpertStore lfu(*f.file, f.layers,
                  {.slots = 2, .eviction = EvictionPolicy::Lfu, .prefetch = false});
  EXPECT_EQ(run(lru, uses), 5u);  // 0 1 2 3 0
  EXPECT_EQ(run(lfu, uses), 4u);  // 0 1 2 3
}

TEST(ExpertStore, LayersKeepTheirShareOnACyclicPass) {
  ExpertFile f;
  // Three slots, two layers: layer 0 may hold two, layer 1 one. Tokens pass the layers in turn,
  // each using two experts per layer: layer 0 keeps both of its own (one LRU over all slots would
  // evict exactly the expert needed next and miss every time), layer 1 alternates.
  std::vector<std::pair<int, int>> uses;
  for (int token = 0; token < 10; ++token)
    for (auto u : {std::pair{0, 0}, {0, 1}, {1, 0}, {1, 1}}) uses.push_back(u);
  ExpertStore s(*f.file, f.layers, {.slots = 3, .prefetch = false});
  EXPECT_EQ(run(s, uses), 2u + 2u * 10);
}

TEST(ExpertStore, OneSlotServesEveryExpertInTurn) {
  ExpertFile f;
  ExpertStore s(*f.file, f.layers, {.slots = 1, .prefetch = true});
  for (int rep = 0; rep < 3; ++rep)
    for (int l = 0; l < kLayers; ++l) {
      std::vector<int32_t> need = {0, 1, 2, 3};
      s.begin_layer(l, need, {0, 1});
      for (int e : need) {
        expect_expert(s.acquire(l, e), l, e);
        s.release(l, e);
      }
    }
  for (const ExpertLayerCounters& c : s.stats()) EXPECT_EQ(c.hits + c.misses, c.uses);
}

TEST(ExpertStore, PrefetchReadsTheGuessAhead) {
  ExpertFile f;
  ExpertStore s(*f.file, f.layers, {.slots = 4, .prefetch = true});
  s.begin_layer(0, {0}, {2, 3});  // layer 1's experts 2 and 3 are read in the background
  expect_expert(s.acquire(0, 0), 0, 0);
  s.release(0, 0);
  // Both guesses on their way (a guess still queued when the layer starts would be a miss).
  for (int i = 0; i < 500 && s.stats()[1].prefetched < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  s.begin_layer(1, {2, 3}, {});
  for (int e : {2, 3}) {
    expect_expert(s.acquire(1, e), 1, e);
    s.release(1, e);
  }
  const auto st = s.stats();
  EXPECT_EQ(st[1].guessed, 2u);
  EXPECT_EQ(st[1].guessed_right, 2u);
  EXPECT_EQ(st[1].prefetched, 2u);
  EXPECT_EQ(st[1].prefetch_used, 2u);
  EXPECT_EQ(st[1].hits, 2u);
  EXPECT_EQ(st[1].misses, 0u);
}

TEST(ExpertStore, NeedsASlot) {
  ExpertFile f;
  EXPECT_TRUE(
      testing::contains(testing::error_of([&] { ExpertStore(*f.file, f.layers, {.slots = 0}); }),
                        "at least one slot"));
}

TEST(Belady, WorkedExamples) {
  // Two slots, a b c a b d a b c: on c, evict b? No: a and b come back before c does; Belady
  // evicts whichever of the held ones comes back last.
  //   a(miss) b(miss) c(miss, evict the one used farthest: b at 4 vs a at 3 -> b)
  //   a(hit) b(miss, evict c: next at 8 vs a at 6) d(miss, evict b: next 7 vs a 6) a(hit)
  //   b(miss) c(miss) = 7 misses
  const int a = 0, b = 1, c = 2, d = 3;
  EXPECT_EQ(belady_misses({a, b, c, a, b, d, a, b, c}, {}, 2), 7);
  EXPECT_EQ(belady_misses({a, b, c, a, b, d, a, b, c}, {}, 4), 4);  // compulsory misses only
  EXPECT_EQ(belady_misses({a, b, a, b}, {a, b}, 2), 0);             // warm start
  EXPECT_EQ(belady_misses({a, a, a}, {}, 1), 1);
  EXPECT_EQ(belady_misses({}, {a}, 1), 0);
}

TEST(Belady, BoundsWhatLruAndLfuMiss) {
  ExpertFile f;
  std::vector<std::pair<int, int>> uses;
  uint32_t x = 12345;
  for (int i = 0; i < 200; ++i) {
    x = x * 1664525u + 1013904223u;
    uses.push_back({static_cast<int>((x >> 8) % kLayers), static_cast<int>((x >> 16) % kExperts)});
  }
  for (EvictionPolicy p : {EvictionPolicy::Lru, EvictionPolicy::Lfu}) {
    ExpertStore s(*f.file, f.layers, {.slots = 3, .eviction = p, .prefetch = false});
    s.reset_stats(true);
    const uint64_t misses = run(s, uses);
    const int64_t best = s.optimal_misses();
    EXPECT_GT(best, 0);
    EXPECT_LE(static_cast<uint64_t>(best), misses);
  }
}

}  // namespace
}  // namespace smoe
