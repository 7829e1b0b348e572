#include <fstream>
#include <set>
#include <string>
#include <thread>

#include "core/error.h"
#include "engine/model_impl.h"
#include "io/gguf.h"
#include "kernels/layout.h"
#include "model/expert_store.h"
#include "tokenizer/gguf_vocab.h"

namespace smoe {
namespace {

std::shared_ptr<const Tokenizer> find_tokenizer(const OpenedModel& m, const std::string& override) {
  if (!override.empty()) return Tokenizer::load(override);
  if (m.gguf && m.gguf->find_kv("tokenizer.ggml.tokens")) return tokenizer_from_gguf(*m.gguf);
  if (!m.tokenizer_hint.empty()) return Tokenizer::load(m.tokenizer_hint);
  return nullptr;
}

uint64_t bytes(const Matrix& m) {
  return static_cast<uint64_t>(m.row_bytes) * m.rows;
}

uint64_t decode_bytes(const ModelConfig& c, const ModelWeights& w) {
  uint64_t b = w.tok_embeddings.row_bytes + bytes(w.output) + 4 * c.dim;
  for (const LayerWeights& l : w.layers) {
    b += bytes(l.wq) + bytes(l.wk) + bytes(l.wv) + bytes(l.wo) + bytes(l.router) + 8 * c.dim;
    uint64_t experts = 0;
    for (const ExpertWeights& e : l.experts) experts += bytes(e.gate) + bytes(e.up) + bytes(e.down);
    b += c.is_moe() ? experts * c.n_experts_used / c.n_experts : experts;
  }
  return b;
}

}  // namespace

ModelInfo describe(const OpenedModel& m) {
  const ModelConfig& c = m.config;
  ModelInfo i;
  i.path = m.path;
  i.format = m.format_desc;
  i.architecture = c.architecture;
  i.dim = c.dim;
  i.n_layers = c.n_layers;
  i.n_heads = c.n_heads;
  i.n_kv_heads = c.n_kv_heads;
  i.head_dim = c.head_dim;
  i.hidden_dim = c.hidden_dim;
  i.vocab_size = c.vocab_size;
  i.n_experts = c.n_experts;
  i.n_experts_used = c.n_experts_used;
  i.sliding_window = c.sliding_window;
  i.max_context = c.max_context;
  i.norm_eps = c.norm_eps;
  i.rope_theta = c.rope_theta;
  i.tied_embeddings = c.tied_embeddings;
  i.chat_template = m.chat_template;
  if (m.gguf)
    if (auto t = m.gguf->get_string("tokenizer.chat_template")) i.chat_template = *t;
  const ParamCounts p = count_params(c);
  i.total_params = p.total;
  i.active_params = p.active;
  if (m.source) {
    for (const TensorView& t : m.source->tensors()) {
      i.tensors.push_back({t.name, std::string(dtype_name(t.dtype)), t.shape, t.nbytes});
      i.weight_bytes += t.nbytes;
    }
  }
  return i;
}

ModelInfo inspect_model(const std::string& path) {
  return describe(open_model(path, {}));
}

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

namespace {

uint64_t weight_bytes(const OpenedModel& m) {
  uint64_t b = 0;
  for (const TensorView& t : m.source->tensors()) b += t.nbytes;
  return b;
}

std::string size_text(uint64_t b) {
  const char* unit[] = {"KiB", "MiB", "GiB"};
  int u = b >= (uint64_t{1} << 30) ? 2 : b >= (uint64_t{1} << 20) ? 1 : 0;
  return fmt::format("{:.2f} {} ({} bytes)", static_cast<double>(b) / (1 << (10 * (u + 1))),
                     unit[u], b);
}

// Under a memory budget the model does not fit in: what every token uses read into memory, the
// experts in a store of as many whole experts as the rest of the budget holds.
void cache_experts(Model::Impl& m, const ModelOptions& opts) {
  ModelWeights& w = m.weights;
  const uint64_t slot = ExpertStore::slot_bytes(w.layers);
  const uint64_t fixed = resident_bytes(w);  // what read_resident will read
  const int64_t per_token = std::max<int64_t>(1, m.opened.config.n_experts_used);
  if (opts.mem_budget < fixed + slot)
    fail(
        "--mem-budget {} is too small for '{}': what every token uses takes {} and one expert "
        "{}, so the budget must be at least {} (one that holds the {} expert{} a token uses in "
        "every layer, {}, reads far less)",
        size_text(opts.mem_budget), opts.path, size_text(fixed), size_text(slot),
        size_text(fixed + slot), per_token, per_token > 1 ? "s" : "",
        size_text(fixed + slot * per_token * m.opened.config.n_layers));
  const int64_t total_experts =
      static_cast<int64_t>(w.layers.size() * (w.layers.empty() ? 0 : w.layers[0].experts.size()));
  const int64_t slots =
      std::min<int64_t>(total_experts, static_cast<int64_t>((opts.mem_budget - fixed) / slot));
  // The weights keep the file's layout: rearranging each expert as it is read would cost more
  // time than the kernels gain while experts come and go.
  m.info.resident_bytes = read_resident(w, true);
  w.expert_store = std::make_shared<ExpertStore>(
      *w.source, w.layers,
      ExpertStoreOptions{.slots = slots,
                         .eviction = opts.expert_eviction == ExpertEviction::Lfu
                                         ? EvictionPolicy::Lfu
                                         : EvictionPolicy::Lru,
                         .prefetch = opts.expert_prefetch,
                         .direct_io = true});
  m.info.mem_budget = opts.mem_budget;
  m.info.expert_slots = slots;
  m.info.expert_slot_bytes = slot;
}

}  // namespace

std::unique_ptr<Model::Impl> load_model_impl(const ModelOptions& opts, const BindOptions& bind) {
  auto impl = std::make_unique<Model::Impl>();
  LoadOptions lo;
  lo.use_mmap = opts.use_mmap || opts.mem_budget > 0;
  lo.mlock = opts.mlock;
  lo.progress = opts.progress;
  impl->opened = open_model(opts.path, lo);
  if (!impl->opened.source)
    fail("'{}' holds a configuration but no weights: point -m at the model file or folder",
         opts.path);
  // A budget the whole model fits in: everything in memory, as without mmap.
  const bool budgeted = opts.mem_budget > 0 && weight_bytes(impl->opened) > opts.mem_budget;
  if (opts.mem_budget > 0 && !budgeted) {
    lo.use_mmap = false;
    impl->opened = open_model(opts.path, lo);
  }
  impl->weights = bind_weights(impl->opened.source, impl->opened.config, impl->opened.scheme, bind);
  impl->info = describe(impl->opened);
  impl->info.decode_bytes_per_token = decode_bytes(impl->opened.config, impl->weights);
  if (budgeted)
    cache_experts(*impl, opts);
  else if (!lo.use_mmap && opts.repack)
    impl->info.repacked_bytes = adopt_layouts(impl->weights, preferred_layout);
  if (opts.mem_budget > 0 && !budgeted) impl->info.mem_budget = opts.mem_budget;
  impl->tokenizer = find_tokenizer(impl->opened, opts.tokenizer_path);
  if (impl->tokenizer && impl->tokenizer->n_vocab() > impl->opened.config.vocab_size)
    fail("tokenizer has {} pieces but the model's vocabulary has {}", impl->tokenizer->n_vocab(),
         impl->opened.config.vocab_size);
  return impl;
}

std::shared_ptr<Model> Model::load(const ModelOptions& opts) {
  return std::shared_ptr<Model>(new Model(load_model_impl(opts, {})));
}

ExpertCacheStats Model::expert_stats() const {
  ExpertCacheStats s;
  const ExpertStore* store = impl_->weights.expert_store.get();
  if (!store) return s;
  s.enabled = true;
  s.eviction = store->eviction() == EvictionPolicy::Lfu ? "lfu" : "lru";
  s.prefetch = store->prefetch_enabled();
  s.direct_io = store->direct_io();
  s.expert_bytes = store->expert_bytes();
  s.optimal_misses = store->optimal_misses();
  s.static_misses = store->static_misses();
  for (const ExpertLayerCounters& c : store->stats())
    s.layers.push_back({c.uses, c.hits, c.misses, c.prefetched, c.prefetch_used, c.prefetch_wasted,
                        c.guessed, c.guessed_right, c.bytes_read, c.wait_s});
  return s;
}

void Model::reset_expert_stats(bool trace) const {
  if (impl_->weights.expert_store) impl_->weights.expert_store->reset_stats(trace);
}

ExpertCacheLayerStats ExpertCacheStats::total() const {
  ExpertCacheLayerStats t;
  for (const ExpertCacheLayerStats& l : layers) {
    t.uses += l.uses;
    t.hits += l.hits;
    t.misses += l.misses;
    t.prefetched += l.prefetched;
    t.prefetch_used += l.prefetch_used;
    t.prefetch_wasted += l.prefetch_wasted;
    t.guessed += l.guessed;
    t.guessed_right += l.guessed_right;
    t.bytes_read += l.bytes_read;
    t.wait_s += l.wait_s;
  }
  return t;
}

const ModelInfo& Model::info() const {
  return impl_->info;
}
std::shared_ptr<const Tokenizer> Model::tokenizer() const {
  return impl_->tokenizer;
}

int default_thread_count() {
  // Distinct (package, core) pairs among the online CPUs; hyper-threads share a core.
  std::set<std::pair<int, int>> cores;
  const unsigned n = std::thread::hardware_concurrency();
  for (unsigned cpu = 0; cpu < n; ++cpu) {
    const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream core(base + "core_id"), pkg(base + "physical_package_id");
    int c = -1, p = -1;
    if (!(core >> c) || !(pkg >> p)) return n == 0 ? 1 : static_cast<int>(n);
    cores.insert({p, c});
  }
  return cores.empty() ? 1 : static_cast<int>(cores.size());
}

}  // namespace smoe
