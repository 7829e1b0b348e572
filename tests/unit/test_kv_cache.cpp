// The paged KV cache with worked examples: block tables, the window's release, prefix sharing
// (hash chains, reference counts, the cache of released blocks), fork and copy on write, a pool
// that runs out.
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <vector>

#include "../support/memory_source.h"
#include "core/error.h"
#include "model/kv_cache.h"

namespace smoe {
namespace {

using test::tiny_mistral;
using test::tiny_mixtral;

// A cache of 4-position blocks over the tiny Mixtral (2 layers, kv_dim 16, f32).
KvCache small_cache(int64_t pool_tokens, int max_seqs = 4, const ModelConfig& c = tiny_mixtral()) {
  return KvCache(c, 64, max_seqs,
                 {.dtype = DType::F32, .block_tokens = 4, .pool_tokens = pool_tokens});
}

// Writes a recognisable value (seq·1000 + pos) into every key of positions [from, to).
void write(KvCache& kv, int seq, int64_t from, int64_t to) {
  kv.grow(seq, to);
  for (int64_t p = from; p < to; ++p)
    for (int l = 0; l < 2; ++l) {
      const float v = static_cast<float>(seq * 1000 + p);
      std::memcpy(kv.key(seq, l, p, 1), &v, sizeof v);
    }
  kv.set_len(seq, to);
}

float key0(const KvCache& kv, int seq, int64_t pos, int layer = 0) {
  float v;
  std::memcpy(&v, kv.key(seq, layer, pos, 1), sizeof v);
  return v;
}

std::vector<int32_t> iota_tokens(int n, int32_t start = 1) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), start);
  return t;
}

TEST(KvCache, BlocksComeFromThePoolAsSequencesGrowAndGoBackWhenCleared) {
  KvCache kv = small_cache(32);  // 8 blocks
  EXPECT_EQ(kv.n_blocks(), 8);
  EXPECT_EQ(kv.block_bytes(), size_t(2 * 2 * 4 * 16 * 4));  // layers·(k,v)·positions·kv_dim·f32
  EXPECT_EQ(kv.blocks_needed(0, 1), 1);
  EXPECT_EQ(kv.blocks_needed(0, 9), 3);
  write(kv, 0, 0, 6);  // positions 0..5: blocks of 4 → 2 blocks
  EXPECT_EQ(kv.blocks_held(0), 2);
  EXPECT_EQ(kv.free_blocks(), 6);
  EXPECT_EQ(kv.blocks_needed(0, 8), 0);  // the second block has room for 6 and 7
  write(kv, 1, 0, 3);
  EXPECT_EQ(kv.free_blocks(), 5);
  for (int64_t p = 0; p < 6; ++p) EXPECT_EQ(key0(kv, 0, p), p);
  for (int64_t p = 0; p < 3; ++p) EXPECT_EQ(key0(kv, 1, p), 1000 + p);
  kv.clear(0);
  EXPECT_EQ(kv.seq_len(0), 0);
  EXPECT_EQ(kv.free_blocks(), 7);
  kv.truncate(1, 1);
  EXPECT_EQ(kv.blocks_held(1), 1);
}

TEST(KvCache, APoolThatRunsOutRefusesAndChangesNothing) {
  KvCache kv = small_cache(8);  // 2 blocks
  write(kv, 0, 0, 5);
  EXPECT_EQ(kv.blocks_needed(1, 5), 2);
  EXPECT_THROW(kv.grow(1, 5), Error);
  EXPECT_EQ(kv.blocks_held(1), 0);
  EXPECT_EQ(kv.free_blocks(), 0);
  EXPECT_THROW(kv.grow(0, 65), Error);  // beyond the context
}

TEST(KvCache, TheWindowReleasesBlocksNoQueryWillSeeAgain) {
  // W = 6 with blocks of 4: after 10 positions the next query (at 10) sees 5..9, so block 0
  // (positions 0..3) goes back; block 1 (4..7) stays.
  KvCache kv(tiny_mistral(6), 64, 1, {.dtype = DType::F32, .block_tokens = 4, .pool_tokens = 64});
  write(kv, 0, 0, 10);
  EXPECT_EQ(kv.blocks_held(0), 2);
  EXPECT_EQ(kv.free_blocks(), 14);
  for (int64_t p = 5; p < 10; ++p) EXPECT_EQ(key0(kv, 0, p), p);
  EXPECT_NO_THROW(kv.truncate(0, 9));      // the query at 9 needs 4..8: still held
  EXPECT_THROW(kv.truncate(0, 5), Error);  // needs 0..4: block 0 is gone
  // A long run holds at most ceil(W/B)+1 blocks between passes.
  for (int64_t len = 10; len < 60; len += 3) {
    write(kv, 0, kv.seq_len(0), len + 3);
    EXPECT_LE(kv.blocks_held(0), 3);
  }
}

TEST(KvCache, PublishedPrefixesAreSharedByHashChainAndReferenceCounts) {
  KvCache kv = small_cache(64);
  const std::vector<int32_t> a = iota_tokens(10);  // blocks [1..4] [5..8] and a partial one
  write(kv, 0, 0, 10);
  kv.publish(0, a.data(), 10);  // two full blocks published
  // The same first 9 tokens: both full blocks attach (8 positions), the 9th is left to compute.
  std::vector<int32_t> b(a.begin(), a.begin() + 9);
  EXPECT_EQ(kv.attach_prefix(1, b.data(), 9), 8);
  EXPECT_EQ(kv.seq_len(1), 8);
  for (int64_t p = 0; p < 8; ++p) EXPECT_EQ(key0(kv, 1, p), p);  // sequence 0's keys
  // Exactly 8 tokens: only the first block, so that the last token is computed.
  std::vector<int32_t> c8(a.begin(), a.begin() + 8);
  EXPECT_EQ(kv.attach_prefix(2, c8.data(), 8), 4);
  // A different second block: the chain stops after the first.
  std::vector<int32_t> d = a;
  d[5] = 99;
  EXPECT_EQ(kv.attach_prefix(3, d.data(), 10), 4);
  // The same tokens at a different start do not match (the hash covers what came before).
  kv.clear(3);
  std::vector<int32_t> e = iota_tokens(9, 5);
  EXPECT_EQ(kv.attach_prefix(3, e.data(), 9), 0);
  const KvCacheStats st = kv.stats();
  EXPECT_EQ(st.prefix_queries, 9 + 8 + 10 + 9);
  EXPECT_EQ(st.prefix_hits, 8 + 4 + 4 + 0);
}

TEST(KvCache, ReleasedPublishedBlocksStayReusableUntilThePoolNeedsThem) {
  KvCache kv = small_cache(12);  // 3 blocks
  const std::vector<int32_t> a = iota_tokens(8);
  write(kv, 0, 0, 8);
  kv.publish(0, a.data(), 8);
  kv.clear(0);  // both blocks cached, nobody uses them
  EXPECT_EQ(kv.stats().blocks_cached, 2);
  EXPECT_EQ(kv.free_blocks(), 3);
  std::vector<int32_t> b = a;
  b.push_back(42);
  EXPECT_EQ(kv.attach_prefix(1, b.data(), 9), 8);  // a later request finds them
  EXPECT_EQ(key0(kv, 1, 7), 7);
  EXPECT_EQ(kv.stats().blocks_cached, 0);
  kv.clear(1);
  // A sequence that needs all three blocks takes the free one, then evicts the cached blocks,
  // the least recently released first; their hashes go with them.
  write(kv, 2, 0, 12);
  EXPECT_EQ(kv.stats().blocks_cached, 0);
  kv.clear(2);
  EXPECT_EQ(kv.attach_prefix(3, b.data(), 9), 0);
}

TEST(KvCache, ForkSharesEveryBlockAndCopiesOnWrite) {
  KvCache kv = small_cache(64);
  write(kv, 0, 0, 6);  // blocks 0..3 and 4..5 (half full)
  const int64_t free_before = kv.free_blocks();
  kv.fork(0, 1);
  EXPECT_EQ(kv.free_blocks(), free_before);  // nothing copied yet
  EXPECT_EQ(kv.seq_len(1), 6);
  EXPECT_EQ(kv.blocks_needed(1, 7), 1);  // writing position 6 copies the shared half block
  write(kv, 1, 6, 7);
  EXPECT_EQ(kv.stats().copies, 1);
  EXPECT_EQ(kv.free_blocks(), free_before - 1);
  for (int64_t p = 0; p < 6; ++p) EXPECT_EQ(key0(kv, 1, p), p);  // the copy kept them
  EXPECT_EQ(key0(kv, 1, 6), 1006);
  // Sequence 0 now owns its half block alone: no copy when it goes on.
  EXPECT_EQ(kv.blocks_needed(0, 7), 0);
  write(kv, 0, 6, 7);
  EXPECT_EQ(key0(kv, 0, 6), 6);
  EXPECT_EQ(kv.stats().copies, 1);
}

TEST(KvCache, WritingIntoAPublishedBlockAfterTruncationUnpublishesOrCopiesIt) {
  KvCache kv = small_cache(64);
  const std::vector<int32_t> a = iota_tokens(8);
  write(kv, 0, 0, 8);
  kv.publish(0, a.data(), 8);
  kv.truncate(0, 6);   // back into the second block, which only sequence 0 holds
  write(kv, 0, 6, 8);  // its content changes: it must no longer be found under its old hash
  std::vector<int32_t> b = a;
  b.push_back(1);
  EXPECT_EQ(kv.attach_prefix(1, b.data(), 9), 4);
  // Now block 0 is shared by sequences 0 and 1; rewinding sequence 0 into it copies it.
  kv.truncate(0, 2);
  EXPECT_EQ(kv.blocks_needed(0, 3), 1);
  write(kv, 0, 2, 3);
  EXPECT_EQ(key0(kv, 1, 2), 2);  // sequence 1 still sees the original
  EXPECT_EQ(key0(kv, 0, 2), 2);
}

TEST(KvCache, StoresHalfAndQ8RowsAndRefusesWhatItCannotHold) {
  const ModelConfig c = tiny_mixtral();  // head_dim 8
  KvCache h(c, 64, 1, {.dtype = DType::F16, .block_tokens = 16});
  EXPECT_EQ(h.head_bytes(), size_t(c.head_dim * 2));
  EXPECT_THROW(KvCache(c, 64, 1, {.dtype = DType::Q8_0}), Error);  // needs head_dim % 32 == 0
  ModelConfig wide = c;
  wide.head_dim = 32;
  KvCache q(wide, 64, 1, {.dtype = DType::Q8_0});
  EXPECT_EQ(q.head_bytes(), size_t(wide.head_dim / 32 * 34));
  EXPECT_THROW(KvCache(c, 64, 1, {.dtype = DType::Q4_0}), Error);
  // Default pool: every sequence its whole context (plus a block for copy on write).
  KvCache d(c, 100, 3, {.dtype = DType::F16, .block_tokens = 16});
  EXPECT_EQ(d.n_blocks(), 3 * (7 + 1));
}

}  // namespace
}  // namespace smoe
