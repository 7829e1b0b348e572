#include "model/kv_cache.h"

#include "core/error.h"

namespace smoe {

KvCache::KvCache(const ModelConfig& cfg, int64_t n_ctx, int max_seqs)
    : n_layers_(cfg.n_layers),
      kv_dim_(cfg.kv_dim()),
      n_ctx_(n_ctx),
      window_(cfg.sliding_window),
      capacity_(cfg.sliding_window > 0 && cfg.sliding_window < n_ctx ? cfg.sliding_window : n_ctx),
      seqs_(static_cast<size_t>(max_seqs)) {
  if (n_ctx <= 0) fail("context size must be positive, got {}", n_ctx);
  if (max_seqs <= 0) fail("the cache needs at least one sequence, got {}", max_seqs);
}

void KvCache::clear(int seq) {
  seqs_.at(static_cast<size_t>(seq)).len = 0;
}

void KvCache::truncate(int seq, int64_t len) {
  Seq& s = seqs_.at(static_cast<size_t>(seq));
  if (len < 0) fail("cannot truncate sequence {} to negative length {}", seq, len);
  if (len >= s.len) return;
  // The next query (at `len`) needs positions first_visible(len)..len-1; the buffer holds only the
  // last `capacity_` positions before s.len.
  if (len > 0 && first_visible(len) < s.len - capacity_)
    fail(
        "cannot rewind sequence {} from {} to {} positions: its rolling buffer of {} slots no "
        "longer holds them (clear the sequence and process it again)",
        seq, s.len, len, capacity_);
  s.len = len;
}

void KvCache::reserve(int seq) {
  Seq& s = seqs_.at(static_cast<size_t>(seq));
  if (s.data.empty()) s.data.assign(static_cast<size_t>(n_layers_ * 2 * capacity_ * kv_dim_), 0.0f);
}

size_t KvCache::bytes_allocated() const {
  size_t b = 0;
  for (const Seq& s : seqs_) b += s.data.size() * sizeof(float);
  return b;
}

}  // namespace smoe
