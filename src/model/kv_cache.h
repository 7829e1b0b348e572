// Keys and values of every sequence, layer and position still visible to attention.
//
// With a sliding window W the cache of a sequence is a rolling buffer of W slots per layer
// (slot = pos mod W): memory stays bounded however long the sequence runs. Without a window it
// holds up to n_ctx positions. A sequence's storage is allocated the first time it is used.
#pragma once

#include <cstdint>
#include <vector>

#include "model/config.h"

namespace smoe {

class KvCache {
 public:
  // n_ctx: the longest sequence allowed; max_seqs: sequence ids are 0..max_seqs-1.
  KvCache(const ModelConfig& cfg, int64_t n_ctx, int max_seqs);

  int64_t n_ctx() const { return n_ctx_; }
  int max_seqs() const { return static_cast<int>(seqs_.size()); }
  int64_t window() const { return window_; }      // 0: full attention
  int64_t capacity() const { return capacity_; }  // slots per layer per sequence
  int64_t kv_dim() const { return kv_dim_; }

  // Positions processed so far in `seq` (the next token goes at this position).
  int64_t seq_len(int seq) const { return seqs_.at(static_cast<size_t>(seq)).len; }
  void clear(int seq);
  // Forgets positions >= len. With a rolling buffer, only positions still held can be kept:
  // an impossible truncation throws smoe::Error (clear the sequence instead).
  void truncate(int seq, int64_t len);
  // Ensures storage exists (allocates once per sequence).
  void reserve(int seq);
  void set_len(int seq, int64_t len) { seqs_.at(static_cast<size_t>(seq)).len = len; }

  // Oldest position a query at `pos` attends to.
  int64_t first_visible(int64_t pos) const {
    return window_ > 0 && pos >= window_ ? pos - window_ + 1 : 0;
  }
  // (kv_dim) key / value of `pos` in `layer`; the slot must have been written.
  float* key(int seq, int layer, int64_t pos) { return slot(seq, layer, pos, 0); }
  float* value(int seq, int layer, int64_t pos) { return slot(seq, layer, pos, 1); }
  const float* key(int seq, int layer, int64_t pos) const {
    return const_cast<KvCache*>(this)->slot(seq, layer, pos, 0);
  }
  const float* value(int seq, int layer, int64_t pos) const {
    return const_cast<KvCache*>(this)->slot(seq, layer, pos, 1);
  }

  size_t bytes_allocated() const;

 private:
  struct Seq {
    int64_t len = 0;
    std::vector<float> data;  // (n_layers, 2, capacity, kv_dim)
  };
  float* slot(int seq, int layer, int64_t pos, int kv) {
    const size_t s = static_cast<size_t>(pos % capacity_);
    return seqs_[static_cast<size_t>(seq)].data.data() +
           ((static_cast<size_t>(layer) * 2 + kv) * capacity_ + s) * kv_dim_;
  }

  int64_t n_layers_, kv_dim_, n_ctx_, window_, capacity_;
  std::vector<Seq> seqs_;
};

}  // namespace smoe
