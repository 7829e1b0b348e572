#include "model/kv_cache.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace smoe {
namespace {

constexpr uint64_t kRootHash = 0x736d6f652d6b7631ull;  // the parent of a sequence's first block

// One position's key (or value) of one head in the cache's dtype.
size_t kv_head_bytes(DType t, const ModelConfig& cfg) {
  switch (t) {
    case DType::F32:
      return static_cast<size_t>(cfg.head_dim) * 4;
    case DType::F16:
      return static_cast<size_t>(cfg.head_dim) * 2;
    case DType::Q8_0:
      if (cfg.head_dim % 32)
        fail(
            "a q8_0 KV cache needs a head size that is a multiple of 32; this model's is {} "
            "(use f16 or f32)",
            cfg.head_dim);
      return static_cast<size_t>(cfg.head_dim / 32) * 34;
    default:
      fail("the KV cache stores f32, f16 or q8_0, not {}", dtype_name(t));
  }
}

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

}  // namespace

KvCache::KvCache(const ModelConfig& cfg, int64_t n_ctx, int max_seqs, const KvCacheOptions& o)
    : n_layers_(cfg.n_layers),
      kv_dim_(cfg.kv_dim()),
      n_kv_heads_(cfg.n_kv_heads),
      n_ctx_(n_ctx),
      window_(cfg.sliding_window),
      block_(o.block_tokens),
      dtype_(o.dtype),
      head_bytes_(kv_head_bytes(o.dtype, cfg)),
      block_bytes_(head_bytes_ * 2 *
                   static_cast<size_t>(cfg.n_layers * cfg.n_kv_heads * o.block_tokens)) {
  if (n_ctx <= 0) fail("context size must be positive, got {}", n_ctx);
  if (max_seqs <= 0) fail("the cache needs at least one sequence, got {}", max_seqs);
  if (block_ <= 0 || block_ > 4096) fail("KV block size must be in 1..4096, got {}", block_);
  int64_t tokens = o.pool_tokens;
  if (tokens <= 0) {
    // Every sequence at once: its context, or with a window the window plus one forward pass
    // (a pass writes all its positions before the oldest ones are released), plus a block for
    // copy on write.
    const int64_t per_seq =
        window_ > 0 ? std::min(n_ctx, window_ + std::max<int64_t>(o.max_batch, 1)) : n_ctx;
    tokens = max_seqs * (ceil_div(per_seq, block_) + 1) * block_;
  }
  const int64_t n_blocks = ceil_div(tokens, block_);
  if (n_blocks > INT32_MAX) fail("a KV pool of {} blocks is too large", n_blocks);
  // Not initialised: pages become resident only when a block is first written. Huge pages where
  // the system grants them (fewer TLB misses over scattered blocks).
  constexpr size_t kHuge = size_t{2} << 20;
  const size_t bytes = block_bytes_ * static_cast<size_t>(n_blocks);
  const size_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
  pool_.reset(static_cast<std::byte*>(std::aligned_alloc(kHuge, rounded)));
  if (!pool_) fail("cannot allocate a KV cache of {} bytes", rounded);
  madvise(pool_.get(), rounded, MADV_HUGEPAGE);
  blocks_.resize(static_cast<size_t>(n_blocks));
  block_tokens_.resize(static_cast<size_t>(n_blocks * block_));
  free_.reserve(static_cast<size_t>(n_blocks));
  for (int64_t b = n_blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
  seqs_.resize(static_cast<size_t>(max_seqs));
}

void KvCache::FreeDeleter::operator()(std::byte* p) const {
  std::free(p);
}

const KvCache::Seq& KvCache::at(int seq) const {
  if (seq < 0 || seq >= max_seqs()) fail("sequence id {} is outside 0..{}", seq, max_seqs() - 1);
  return seqs_[static_cast<size_t>(seq)];
}

int64_t KvCache::blocks_held(int seq) const {
  const Seq& s = at(seq);
  return std::count_if(s.table.begin(), s.table.end(), [](int32_t b) { return b >= 0; });
}

KvCacheStats KvCache::stats() const {
  return {n_blocks(),
          static_cast<int64_t>(free_.size() + lru_.size()),
          static_cast<int64_t>(lru_.size()),
          prefix_queries_,
          prefix_hits_,
          copies_};
}

int32_t KvCache::take_block() {
  int32_t b;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else if (!lru_.empty()) {  // reuse the least recently released cached block
    b = lru_.front();
    lru_.pop_front();
    unpublish(b);
  } else {
    fail("the KV cache is full: all {} blocks of {} positions are in use", n_blocks(), block_);
  }
  blocks_[static_cast<size_t>(b)].refs = 1;
  return b;
}

void KvCache::release(int32_t b) {
  Block& k = blocks_[static_cast<size_t>(b)];
  if (--k.refs > 0) return;
  if (k.published) {
    lru_.push_back(b);
    k.lru = std::prev(lru_.end());
  } else {
    free_.push_back(b);
  }
}

void KvCache::unpublish(int32_t b) {
  Block& k = blocks_[static_cast<size_t>(b)];
  if (!k.published) return;
  auto it = by_hash_.find(k.hash);
  if (it != by_hash_.end() && it->second == b) by_hash_.erase(it);
  k.published = false;
}

void KvCache::clear(int seq) {
  Seq& s = at(seq);
  for (int32_t b : s.table)
    if (b >= 0) release(b);
  s = Seq{};
}

void KvCache::truncate(int seq, int64_t len) {
  Seq& s = at(seq);
  if (len < 0) fail("cannot truncate sequence {} to negative length {}", seq, len);
  if (len >= s.len) return;
  // The next query (at `len`) needs positions first_visible(len)..len-1.
  for (int64_t p = first_visible(len); p < len; p += block_)
    if (s.table[static_cast<size_t>(p / block_)] < 0)
      fail(
          "cannot rewind sequence {} from {} to {} positions: the window of {} positions no "
          "longer holds them (clear the sequence and process it again)",
          seq, s.len, len, window_);
  const size_t keep = static_cast<size_t>(ceil_div(len, block_));
  for (size_t i = keep; i < s.table.size(); ++i)
    if (s.table[i] >= 0) release(s.table[i]);
  s.table.resize(keep);
  s.published = std::min<int64_t>(s.published, len / block_);
  s.len = len;
}

// Whether writing `pos` (the next position) means copying its block first: the block exists and
// another sequence (or the prefix cache) shares it.
bool KvCache::needs_copy(const Seq& s, int64_t pos) const {
  const size_t i = static_cast<size_t>(pos / block_);
  return i < s.table.size() && s.table[i] >= 0 && blocks_[static_cast<size_t>(s.table[i])].refs > 1;
}

int64_t KvCache::blocks_needed(int seq, int64_t new_len) const {
  const Seq& s = at(seq);
  if (new_len <= s.len) return 0;
  const int64_t have = static_cast<int64_t>(s.table.size());
  return std::max<int64_t>(0, ceil_div(new_len, block_) - have) + (needs_copy(s, s.len) ? 1 : 0);
}

void KvCache::grow(int seq, int64_t new_len) {
  Seq& s = at(seq);
  if (new_len <= s.len) return;
  if (new_len > n_ctx_)
    fail("sequence {} would reach position {}, beyond the context size of {} tokens", seq, new_len,
         n_ctx_);
  const int64_t need = blocks_needed(seq, new_len);
  if (need > free_blocks())
    fail("the KV cache is full: sequence {} needs {} more blocks of {} positions, {} are free", seq,
         need, block_, free_blocks());
  const size_t first = static_cast<size_t>(s.len / block_);
  if (first < s.table.size() && s.table[first] >= 0) {  // the block being written into
    const int32_t old = s.table[first];
    if (blocks_[static_cast<size_t>(old)].refs > 1) {
      const int32_t b = take_block();
      std::memcpy(block_data(b), block_data(old), block_bytes_);
      release(old);
      s.table[first] = b;
      ++copies_;
    } else {
      unpublish(old);  // its content changes: it no longer holds what its hash says
    }
    s.published = std::min<int64_t>(s.published, static_cast<int64_t>(first));
  }
  while (static_cast<int64_t>(s.table.size()) < ceil_div(new_len, block_))
    s.table.push_back(take_block());
}

void KvCache::set_len(int seq, int64_t len) {
  Seq& s = at(seq);
  s.len = len;
  release_out_of_window(s);
}

void KvCache::release_out_of_window(Seq& s) {
  if (window_ <= 0) return;
  const int64_t oldest = first_visible(s.len);  // the next query sees positions from here on
  for (int64_t i = 0; (i + 1) * block_ <= oldest && i < static_cast<int64_t>(s.table.size()); ++i)
    if (s.table[static_cast<size_t>(i)] >= 0) {
      release(s.table[static_cast<size_t>(i)]);
      s.table[static_cast<size_t>(i)] = -1;
    }
}

uint64_t KvCache::block_hash(uint64_t parent, const int32_t* tokens) const {
  uint64_t h = parent ^ 0x9e3779b97f4a7c15ull;  // FNV-1a over the parent hash and the tokens
  const auto mix = [&h](uint64_t v) {
    for (int i = 0; i < 8; ++i, v >>= 8) h = (h ^ (v & 0xff)) * 0x100000001b3ull;
  };
  mix(parent);
  for (int64_t i = 0; i < block_; ++i) mix(static_cast<uint32_t>(tokens[i]));
  return h;
}

void KvCache::publish(int seq, const int32_t* tokens, int64_t n) {
  Seq& s = at(seq);
  n = std::min(n, s.len);
  for (int64_t i = s.published; (i + 1) * block_ <= n; ++i) {
    const int32_t b = s.table[static_cast<size_t>(i)];
    if (b < 0) return;  // released by the window: the chain is broken here
    const uint64_t parent = i == 0 ? kRootHash : s.last_hash;
    const uint64_t h = block_hash(parent, tokens + i * block_);
    Block& k = blocks_[static_cast<size_t>(b)];
    if (!k.published && !by_hash_.count(h)) {  // else an equal block is already published
      k.published = true;
      k.hash = h;
      k.parent = parent;
      std::copy_n(tokens + i * block_, block_, block_tokens_.begin() + b * block_);
      by_hash_.emplace(h, b);
    }
    s.last_hash = h;
    s.published = i + 1;
  }
}

int64_t KvCache::attach_prefix(int seq, const int32_t* tokens, int64_t n) {
  Seq& s = at(seq);
  if (s.len != 0 || !s.table.empty()) fail("attach_prefix needs an empty sequence, {} is not", seq);
  prefix_queries_ += n;
  uint64_t parent = kRootHash;
  for (int64_t i = 0; (i + 1) * block_ <= n - 1; ++i) {
    const uint64_t h = block_hash(parent, tokens + i * block_);
    const auto it = by_hash_.find(h);
    if (it == by_hash_.end()) break;
    const int32_t b = it->second;
    Block& k = blocks_[static_cast<size_t>(b)];
    if (k.parent != parent || !std::equal(tokens + i * block_, tokens + (i + 1) * block_,
                                          block_tokens_.begin() + b * block_))
      break;  // a hash collision: not the same tokens
    if (k.refs++ == 0) lru_.erase(k.lru);
    s.table.push_back(b);
    s.last_hash = parent = h;
    s.published = i + 1;
  }
  s.len = static_cast<int64_t>(s.table.size()) * block_;
  prefix_hits_ += s.len;
  release_out_of_window(s);
  return s.len;
}

void KvCache::fork(int src, int dst) {
  if (src == dst) return;
  const Seq& from = at(src);
  Seq& to = at(dst);
  if (to.len != 0 || !to.table.empty()) fail("fork needs an empty target, sequence {} is not", dst);
  to = from;
  for (int32_t b : to.table)
    if (b >= 0) ++blocks_[static_cast<size_t>(b)].refs;
}

}  // namespace smoe
