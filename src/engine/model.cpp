#include <fstream>
#include <set>
#include <string>
#include <thread>

#include "core/error.h"
#include "engine/model_impl.h"
#include "io/gguf.h"
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

std::unique_ptr<Model::Impl> load_model_impl(const ModelOptions& opts, const BindOptions& bind) {
  auto impl = std::make_unique<Model::Impl>();
  LoadOptions lo;
  lo.use_mmap = opts.use_mmap;
  lo.mlock = opts.mlock;
  lo.progress = opts.progress;
  impl->opened = open_model(opts.path, lo);
  if (!impl->opened.source)
    fail("'{}' holds a configuration but no weights: point -m at the model file or folder",
         opts.path);
  impl->weights = bind_weights(impl->opened.source, impl->opened.config, impl->opened.scheme, bind);
  impl->info = describe(impl->opened);
  impl->info.decode_bytes_per_token = decode_bytes(impl->opened.config, impl->weights);
  if (!opts.use_mmap && opts.repack)
    impl->info.repacked_bytes = adopt_layouts(impl->weights, preferred_layout);
  impl->tokenizer = find_tokenizer(impl->opened, opts.tokenizer_path);
  if (impl->tokenizer && impl->tokenizer->n_vocab() > impl->opened.config.vocab_size)
    fail("tokenizer has {} pieces but the model's vocabulary has {}", impl->tokenizer->n_vocab(),
         impl->opened.config.vocab_size);
  return impl;
}

std::shared_ptr<Model> Model::load(const ModelOptions& opts) {
  return std::shared_ptr<Model>(new Model(load_model_impl(opts, {})));
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
