// smoe's public API. The command-line program and the server use only this header (and
// tokenizer.h / chat.h).
//
//   auto model = smoe::Model::load({.path = "mixtral.Q4_K_M.gguf"});
//   smoe::Context ctx(model, {.n_ctx = 4096, .n_threads = 8});
//   std::vector<smoe::BatchToken> batch = ...;  // (token, pos, seq, logits?)
//   const float* logits = ctx.decode(batch);     // (tokens that asked for logits, vocab)
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "smoe/tokenizer.h"

namespace smoe {

// Which cached expert a budgeted model replaces: the least recently used, or the least often
// used (counts that halve as time passes).
enum class ExpertEviction { Lru, Lfu };

struct ModelOptions {
  std::string path;            // .gguf file, Hugging Face folder, Mistral folder, llama2.c .bin
  std::string tokenizer_path;  // optional: overrides the tokenizer found with the model
  bool use_mmap = true;        // false: read weights into ordinary memory
  bool mlock = false;          // lock weights in RAM
  // With use_mmap false: rearrange the weights once at load into the layout this CPU's kernels
  // read fastest (Q4_0 interleaved by eight rows on AVX2 without AVX-512), in place.
  bool repack = true;
  // With a model larger than this many bytes: keep resident only what every token uses
  // (embeddings, attention, norms, routers, output head) and hold the experts in a cache of whole
  // experts within the rest, read from the file on demand (positioned reads, not mmap). 0: no
  // budget. The weights then keep the file's layout (no repack). A budget the whole model fits in
  // reads everything into memory, as use_mmap false (and repack applies).
  uint64_t mem_budget = 0;
  ExpertEviction expert_eviction = ExpertEviction::Lru;
  bool expert_prefetch = true;  // read the next layer's likely experts in the background
  // Called while loading: (bytes done, bytes total). Optional.
  std::function<void(uint64_t, uint64_t)> progress;
};

struct TensorInfo {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;  // outermost first
  uint64_t nbytes = 0;
};

struct ModelInfo {
  std::string path;
  std::string format;        // what was read: "GGUF v3 file ...", "safetensors folder ...", ...
  std::string architecture;  // "mixtral" | "mistral" | "llama"
  int64_t dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0, hidden_dim = 0;
  int64_t vocab_size = 0, n_experts = 0, n_experts_used = 0, sliding_window = 0, max_context = 0;
  float norm_eps = 0, rope_theta = 0;
  bool tied_embeddings = false;
  // The chat template the file carries (GGUF tokenizer.chat_template, tokenizer_config.json's
  // chat_template), "" when it carries none. smoe recognises what it says (see smoe/chat.h).
  std::string chat_template;
  int64_t total_params = 0;   // computed from the configuration's shapes
  int64_t active_params = 0;  // used per token (top-k experts)
  uint64_t weight_bytes = 0;  // sum of tensor sizes (0 for a configuration alone)
  // Weight bytes one decoded token reads: attention, router, k of the n experts of every layer
  // (on average), one embedding row, the LM head. Set once the weights are bound.
  uint64_t decode_bytes_per_token = 0;
  uint64_t repacked_bytes = 0;  // weight bytes rearranged at load for the kernels (ModelOptions)
  // Under ModelOptions::mem_budget (0 when the experts are not cached): the budget, the bytes
  // held for what every token uses, and the expert cache's slots (whole experts) and their size.
  uint64_t mem_budget = 0;
  uint64_t resident_bytes = 0;
  int64_t expert_slots = 0;
  uint64_t expert_slot_bytes = 0;
  std::vector<TensorInfo> tensors;
};

// Reads a model's description without binding its weights; a bare config.json or params.json
// works too. Throws smoe::Error (std::runtime_error) with a one-line reason.
ModelInfo inspect_model(const std::string& path);

// What the expert cache of a budgeted model did, per layer, since load or the last reset.
struct ExpertCacheLayerStats {
  uint64_t uses = 0;             // experts a layer's batch needed (once per expert per batch)
  uint64_t hits = 0;             // in the cache then (or arriving there from a guess)
  uint64_t misses = 0;           // read then
  uint64_t prefetched = 0;       // read in the background (misses read ahead, guesses)
  uint64_t prefetch_used = 0;    // ... and used before being evicted
  uint64_t prefetch_wasted = 0;  // ... and evicted unused
  uint64_t guessed = 0;          // experts guessed for this layer from the layer before
  uint64_t guessed_right = 0;    // ... that its router then chose
  uint64_t bytes_read = 0;       // from the file, demand and prefetch
  double wait_s = 0;             // time the forward pass waited for reads
};

struct ExpertCacheStats {
  bool enabled = false;  // false: no budget, or everything resident
  std::string eviction;  // "lru" | "lfu"
  bool prefetch = false;
  bool direct_io = false;     // reads bypass the page cache (O_DIRECT)
  uint64_t expert_bytes = 0;  // one expert's weights (what a miss reads)
  // Misses of the best possible eviction (Belady's) over the same experts in the same order, with
  // the same slots, from what they held at the reset; -1 unless reset_expert_stats(true).
  int64_t optimal_misses = -1;
  // Misses of the best cache that knows only how often each expert was used over the same
  // sequence (the most used ones held throughout); -1 unless reset_expert_stats(true).
  int64_t static_misses = -1;
  std::vector<ExpertCacheLayerStats> layers;
  ExpertCacheLayerStats total() const;  // summed over layers
};

class Model {
 public:
  // Loads and checks every tensor. Throws with a message naming the file, tensor, expected and
  // actual shape / dtype.
  static std::shared_ptr<Model> load(const ModelOptions& opts);
  ~Model();

  const ModelInfo& info() const;
  // The model's tokenizer, or null when the model carries none and none was given.
  std::shared_ptr<const Tokenizer> tokenizer() const;
  // The expert cache's counters (enabled false without one); reset_expert_stats zeroes them and,
  // with `trace`, records the experts used from then on for ExpertCacheStats::optimal_misses.
  ExpertCacheStats expert_stats() const;
  void reset_expert_stats(bool trace = false) const;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// How the KV cache stores keys and values: half precision by default (half the memory of f32,
// what llama.cpp stores too), f32 to match a float reference exactly, q8_0 for a quarter.
enum class KvType { F16, F32, Q8_0 };

struct ContextOptions {
  int64_t n_ctx = 4096;            // longest sequence (clamped to the model's trained context)
  int n_threads = 0;               // 0: one per physical core
  int64_t max_batch = 512;         // tokens per forward pass; longer batches are split
  int max_seqs = 1;                // sequence ids 0..max_seqs-1
  bool reference_kernels = false;  // run the scalar reference kernels (for checking)
  bool amx = true;                 // AMX int8 tiles where the CPU has them (false: AVX-512 only)
  KvType kv_type = KvType::F16;
  // Positions the paged KV cache holds for all sequences together, in blocks of kv_block. 0: room
  // for every sequence to fill its context at once (with a sliding window: the window and a batch).
  int64_t kv_tokens = 0;
  int kv_block = 16;
};

// The paged KV cache's state.
struct KvStats {
  int64_t block_tokens = 0;   // positions per block
  int64_t blocks_total = 0;   // blocks in the pool
  int64_t blocks_free = 0;    // not held by any sequence (cached ones included)
  int64_t blocks_cached = 0;  // free, but holding a published prefix that can be reused
  int64_t prefix_queries = 0, prefix_hits = 0;  // tokens offered to / found by reuse_prefix
  int64_t copies = 0;                           // blocks copied on write
  uint64_t bytes = 0;                           // the pool's size
};

struct BatchToken {
  int32_t token = 0;
  int64_t pos = 0;
  int32_t seq = 0;
  bool logits = false;  // return this token's next-token logits
};

// Receives each token's expert choices (routing analysis).
struct RoutingEvent {
  int layer;
  int64_t batch_index;
  const int32_t* experts;
  const float* weights;
  int k;
};

class Context {
 public:
  Context(std::shared_ptr<const Model> model, const ContextOptions& opts);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // Runs the batch (split into passes of max_batch). Returns the logits of the tokens that asked
  // for them, (n_out, n_vocab) row-major, valid until the next call. Throws on a bad batch
  // (token out of range, positions that do not continue a sequence, context overflow) before
  // computing anything.
  const float* decode(const std::vector<BatchToken>& batch);

  int64_t seq_len(int seq) const;
  void clear(int seq);
  void truncate(int seq, int64_t len);

  // The paged KV cache, for schedulers. Blocks `seq` needs from the pool to reach new_len.
  int64_t kv_blocks_needed(int seq, int64_t new_len) const;
  KvStats kv_stats() const;
  // Prefix sharing: publishes the keys and values of `seq`'s first tokens.size() positions (its
  // tokens so far) so that later sequences that start the same way can reuse them.
  void share_prefix(int seq, const std::vector<int32_t>& tokens);
  // Gives the empty sequence `seq` the longest shared prefix of `tokens` (whole blocks, leaving at
  // least the last token to compute); returns the positions reused (its seq_len now).
  int64_t reuse_prefix(int seq, const std::vector<int32_t>& tokens);
  // Makes the empty sequence `dst` a copy of `src` (blocks shared, copied on write).
  void fork(int src, int dst);
  int32_t n_vocab() const;
  int64_t n_ctx() const;
  int n_threads() const;
  const char* backend_name() const;
  void set_routing_callback(std::function<void(const RoutingEvent&)> cb);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Threads to use by default: the physical cores of this machine.
int default_thread_count();

}  // namespace smoe
