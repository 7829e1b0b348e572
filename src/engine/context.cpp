#include <algorithm>

#include "core/error.h"
#include "core/thread_pool.h"
#include "engine/model_impl.h"
#include "kernels/backend.h"
#include "model/kv_cache.h"
#include "model/transformer.h"

namespace smoe {
namespace {

class CallbackObserver : public ForwardObserver {
 public:
  std::function<void(const RoutingEvent&)> cb;
  int64_t offset = 0;  // batch index of the current pass's first entry
  void on_routing(int layer, int64_t i, const int32_t* experts, const float* weights,
                  int k) override {
    cb(RoutingEvent{layer, offset + i, experts, weights, k});
  }
};

// The best instruction set short of AMX: AVX-512 where the CPU has it, else whatever it has.
BackendIsa without_amx() {
  return backend_isa_supported(BackendIsa::Avx512) ? BackendIsa::Avx512 : BackendIsa::Auto;
}

DType kv_dtype(KvType t) {
  return t == KvType::F32 ? DType::F32 : t == KvType::Q8_0 ? DType::Q8_0 : DType::F16;
}

}  // namespace

struct Context::Impl {
  std::shared_ptr<const Model> model;
  const ModelConfig& cfg;
  int n_threads;
  ThreadPool pool;
  std::unique_ptr<Backend> backend;
  KvCache cache;
  Transformer transformer;
  std::vector<BatchEntry> entries;
  std::vector<float> logits;  // (n_out, vocab)
  CallbackObserver observer;

  Impl(std::shared_ptr<const Model> m, const ContextOptions& o, int threads, int64_t n_ctx)
      : model(std::move(m)),
        cfg(model->impl().opened.config),
        n_threads(threads),
        pool(threads),
        backend(make_backend({.max_cols = std::max({cfg.dim, cfg.hidden_dim, cfg.q_dim()}),
                              .max_rows = std::max<int64_t>(o.max_batch, 1),
                              .n_threads = threads,
                              .reference = o.reference_kernels,
                              .isa = o.amx ? BackendIsa::Auto : without_amx()})),
        cache(cfg, n_ctx, o.max_seqs,
              {.dtype = kv_dtype(o.kv_type),
               .block_tokens = o.kv_block,
               .pool_tokens = o.kv_tokens,
               .max_batch = o.max_batch}),
        transformer(cfg, model->impl().weights, o.max_batch, n_ctx, threads, kv_dtype(o.kv_type)) {}
};

Context::Context(std::shared_ptr<const Model> model, const ContextOptions& opts) {
  if (!model) fail("no model given to the context");
  const ModelConfig& c = model->impl().opened.config;
  if (opts.n_ctx <= 0) fail("context size must be positive, got {}", opts.n_ctx);
  if (opts.max_batch <= 0) fail("batch size must be positive, got {}", opts.max_batch);
  if (opts.max_seqs <= 0 || opts.max_seqs > 4096)
    fail("number of sequences must be in 1..4096, got {}", opts.max_seqs);
  if (opts.n_threads < 0 || opts.n_threads > 1024)
    fail("thread count must be in 0..1024, got {}", opts.n_threads);
  const int threads = opts.n_threads == 0 ? default_thread_count() : opts.n_threads;
  const int64_t n_ctx = std::min(opts.n_ctx, c.max_context);
  impl_ = std::make_unique<Impl>(std::move(model), opts, threads, n_ctx);
}

Context::~Context() = default;

const float* Context::decode(const std::vector<BatchToken>& batch) {
  Impl& m = *impl_;
  const int64_t n = static_cast<int64_t>(batch.size());
  m.entries.resize(batch.size());
  int64_t n_out = 0;
  for (int64_t i = 0; i < n; ++i) {
    m.entries[i] = BatchEntry{batch[i].token, batch[i].pos, batch[i].seq, batch[i].logits};
    n_out += batch[i].logits ? 1 : 0;
  }
  // Check the whole batch first, so a bad batch changes nothing.
  m.transformer.check_batch(m.entries.data(), n, m.cache);
  if (m.logits.size() < static_cast<size_t>(n_out * m.cfg.vocab_size))
    m.logits.resize(static_cast<size_t>(n_out * m.cfg.vocab_size));
  ForwardContext fctx{*m.backend, m.pool, m.observer.cb ? &m.observer : nullptr};
  float* out = m.logits.data();
  const int64_t step = m.transformer.max_batch();
  for (int64_t b = 0; b < n; b += step) {
    const int64_t len = std::min(step, n - b);
    m.observer.offset = b;
    m.transformer.forward(m.entries.data() + b, len, m.cache, out, fctx);
    for (int64_t i = b; i < b + len; ++i) out += m.entries[i].logits ? m.cfg.vocab_size : 0;
  }
  return m.logits.data();
}

int64_t Context::seq_len(int seq) const {
  return impl_->cache.seq_len(seq);
}
void Context::clear(int seq) {
  impl_->cache.clear(seq);
}
void Context::truncate(int seq, int64_t len) {
  impl_->cache.truncate(seq, len);
}
int64_t Context::kv_blocks_needed(int seq, int64_t new_len) const {
  return impl_->cache.blocks_needed(seq, new_len);
}
KvStats Context::kv_stats() const {
  const KvCache& c = impl_->cache;
  const KvCacheStats s = c.stats();
  return {c.block_tokens(), s.blocks_total, s.blocks_free, s.blocks_cached,
          s.prefix_queries, s.prefix_hits,  s.copies,      c.bytes_allocated()};
}
void Context::share_prefix(int seq, const std::vector<int32_t>& tokens) {
  impl_->cache.publish(seq, tokens.data(), static_cast<int64_t>(tokens.size()));
}
int64_t Context::reuse_prefix(int seq, const std::vector<int32_t>& tokens) {
  return impl_->cache.attach_prefix(seq, tokens.data(), static_cast<int64_t>(tokens.size()));
}
void Context::fork(int src, int dst) {
  impl_->cache.fork(src, dst);
}
int32_t Context::n_vocab() const {
  return static_cast<int32_t>(impl_->cfg.vocab_size);
}
int64_t Context::n_ctx() const {
  return impl_->cache.n_ctx();
}
int Context::n_threads() const {
  return impl_->n_threads;
}
const char* Context::backend_name() const {
  return impl_->backend->name();
}
void Context::set_routing_callback(std::function<void(const RoutingEvent&)> cb) {
  impl_->observer.cb = std::move(cb);
}

}  // namespace smoe
