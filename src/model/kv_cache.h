// Keys and values of every sequence, in fixed-size blocks from one pool (a paged KV cache).
//
// The pool holds n_blocks() blocks of block_tokens() positions each; a block stores every layer's
// keys and values of its positions, (n_layers, 2, n_kv_heads, block_tokens, head_dim) in the
// cache's dtype (F32, F16 or Q8_0): one head's rows of a block lie together, as attention reads
// them. A sequence owns a block table: position p lives in block table[p / B], row p % B.
// Blocks are taken from the pool as a sequence grows and go back when it is cleared or truncated.
// With a sliding window W the blocks whose positions all fell out of the window go back as the
// sequence advances (the rolling buffer, paged): a sequence holds at most ceil(W / B) + 1 blocks.
//
// Prefix sharing: a full block can be published under a hash of its tokens and of every token
// before it; a new sequence whose tokens start the same way attaches those blocks instead of
// computing them again. Blocks are reference-counted; a block shared by several sequences is copied
// before one of them writes into it (copy on write). Published blocks that no sequence uses stay
// cached until the pool needs their memory (the least recently released first).
//
// Worked example (B = 4): sequence 0 holds "a b c d e f" in blocks [7, 2] (block 2 half full).
// fork(0, 1) gives sequence 1 the table [7, 2]; both blocks have two references. When sequence 1
// writes position 6 it first copies block 2 to a free block, say 5, and its table becomes [7, 5].
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <unordered_map>
#include <vector>

#include "core/dtype.h"
#include "model/config.h"

namespace smoe {

struct KvCacheOptions {
  DType dtype = DType::F32;  // F32, F16 or Q8_0 (Q8_0 needs head_dim a multiple of 32)
  int64_t block_tokens = 16;
  // Positions the pool holds in all (rounded up to whole blocks). 0: enough for every sequence to
  // fill its context (with a window: the window plus one batch) at once.
  int64_t pool_tokens = 0;
  int64_t max_batch = 512;  // the longest forward pass (sizes the default pool with a window)
};

struct KvCacheStats {
  int64_t blocks_total = 0, blocks_free = 0, blocks_cached = 0;  // cached: free but reusable
  int64_t prefix_queries = 0;                                    // tokens offered to attach_prefix
  int64_t prefix_hits = 0;  // of those, tokens found in the cache
  int64_t copies = 0;       // copy-on-write block copies
};

class KvCache {
 public:
  // n_ctx: the longest sequence allowed; max_seqs: sequence ids are 0..max_seqs-1.
  KvCache(const ModelConfig& cfg, int64_t n_ctx, int max_seqs, const KvCacheOptions& opts = {});

  int64_t n_ctx() const { return n_ctx_; }
  int max_seqs() const { return static_cast<int>(seqs_.size()); }
  int64_t window() const { return window_; }  // 0: full attention
  int64_t kv_dim() const { return kv_dim_; }
  DType dtype() const { return dtype_; }
  int64_t block_tokens() const { return block_; }
  int64_t n_blocks() const { return static_cast<int64_t>(blocks_.size()); }
  size_t head_bytes() const { return head_bytes_; }    // one position's key of one head
  size_t block_bytes() const { return block_bytes_; }  // one block, all layers
  size_t bytes_allocated() const { return block_bytes_ * blocks_.size(); }
  // Blocks a new sequence may take now: free ones and cached ones nobody uses.
  int64_t free_blocks() const { return static_cast<int64_t>(free_.size() + lru_.size()); }
  int64_t blocks_held(int seq) const;  // blocks in the sequence's table
  KvCacheStats stats() const;

  // Positions processed so far in `seq` (the next token goes at this position).
  int64_t seq_len(int seq) const { return at(seq).len; }
  void clear(int seq);
  // Forgets positions >= len. Positions that fell out of a window are gone: a truncation that
  // needs them throws smoe::Error (clear the sequence instead).
  void truncate(int seq, int64_t len);

  // Blocks `seq` needs from the pool to hold positions up to new_len (new blocks, plus a copy of
  // a shared block it would write into).
  int64_t blocks_needed(int seq, int64_t new_len) const;
  // Makes positions seq_len..new_len-1 writable (takes blocks, copies shared ones). Throws when
  // the pool has too few blocks (check blocks_needed first); changes nothing then.
  void grow(int seq, int64_t new_len);
  // Records that positions < len hold keys and values; with a window, gives back the blocks whose
  // positions the next query no longer sees.
  void set_len(int seq, int64_t len);

  // Oldest position a query at `pos` attends to.
  int64_t first_visible(int64_t pos) const {
    return window_ > 0 && pos >= window_ ? pos - window_ + 1 : 0;
  }
  // The key (value) of `pos` in `layer` for kv head `head`: head_dim values in the cache's
  // dtype. The block must exist.
  std::byte* key(int seq, int layer, int64_t pos, int64_t head) {
    return row(seq, layer, pos, 0, head);
  }
  std::byte* value(int seq, int layer, int64_t pos, int64_t head) {
    return row(seq, layer, pos, 1, head);
  }
  const std::byte* key(int seq, int layer, int64_t pos, int64_t head) const {
    return const_cast<KvCache*>(this)->row(seq, layer, pos, 0, head);
  }
  const std::byte* value(int seq, int layer, int64_t pos, int64_t head) const {
    return const_cast<KvCache*>(this)->row(seq, layer, pos, 1, head);
  }

  // Prefix sharing. Publishes the full blocks of `seq` that hold tokens[0..n) (n <= seq_len) so
  // that later sequences starting with the same tokens can attach them.
  void publish(int seq, const int32_t* tokens, int64_t n);
  // Attaches to the empty sequence `seq` the published blocks that hold the longest prefix of
  // tokens[0..n) in whole blocks, leaving at least the last token to compute. Returns the number
  // of positions attached (seq_len afterwards).
  int64_t attach_prefix(int seq, const int32_t* tokens, int64_t n);
  // Makes the empty sequence `dst` share all of `src`'s positions (copy on write).
  void fork(int src, int dst);

 private:
  struct Seq {
    int64_t len = 0;
    std::vector<int32_t> table;  // block of each block-sized run of positions; -1: released
    int64_t published = 0;       // leading blocks already published
    uint64_t last_hash = 0;      // hash of the last published block
  };
  struct Block {
    int32_t refs = 0;
    bool published = false;
    uint64_t hash = 0, parent = 0;     // its hash and its predecessor's
    std::list<int32_t>::iterator lru;  // valid while cached and unused
  };

  const Seq& at(int seq) const;
  Seq& at(int seq) { return const_cast<Seq&>(static_cast<const KvCache*>(this)->at(seq)); }
  std::byte* row(int seq, int layer, int64_t pos, int kv, int64_t head) {
    const Seq& s = seqs_[static_cast<size_t>(seq)];
    const int32_t b = s.table[static_cast<size_t>(pos / block_)];
    const size_t run = (static_cast<size_t>(layer) * 2 + kv) * n_kv_heads_ + head;
    return block_data(b) + (run * block_ + pos % block_) * head_bytes_;
  }
  std::byte* block_data(int32_t b) { return pool_.get() + static_cast<size_t>(b) * block_bytes_; }
  bool needs_copy(const Seq& s, int64_t pos) const;
  int32_t take_block();
  void release(int32_t b);
  void unpublish(int32_t b);
  void release_out_of_window(Seq& s);
  uint64_t block_hash(uint64_t parent, const int32_t* tokens) const;

  struct FreeDeleter {
    void operator()(std::byte* p) const;
  };
  int64_t n_layers_, kv_dim_, n_kv_heads_, n_ctx_, window_, block_;
  DType dtype_;
  size_t head_bytes_, block_bytes_;
  // (n_blocks, n_layers, 2, n_kv_heads, block, head_dim), 2 MiB-aligned for huge pages
  std::unique_ptr<std::byte[], FreeDeleter> pool_;
  std::vector<Block> blocks_;
  std::vector<int32_t> block_tokens_;  // (n_blocks, block) tokens of published blocks
  std::vector<int32_t> free_;          // unused, unpublished (taken last-in first-out)
  std::list<int32_t> lru_;             // unused, published: oldest release first
  std::unordered_map<uint64_t, int32_t> by_hash_;
  std::vector<Seq> seqs_;
  int64_t prefix_queries_ = 0, prefix_hits_ = 0, copies_ = 0;
};

}  // namespace smoe
