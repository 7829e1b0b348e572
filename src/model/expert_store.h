// Experts kept within a memory budget: whole experts of every layer live in a fixed number of
// slots of memory the engine owns, read from the model file with positioned reads when a token
// needs them and not in a slot (io/file_reader.h), never through the page cache's guesses. The
// caller pins an expert while it computes with it; an unpinned expert may be replaced by another.
//
// Each layer has an equal share of the slots; a layer over its share gives slots to one under it,
// a layer at its share replaces one of its own. Eviction picks among unpinned, loaded experts that
// the current layer does not want:
//   Lru: the one used longest ago;  Lfu: the one used least often (counts halve as time passes,
//   so that a once-popular expert does not stay forever), ties by age.
// Prefetch: the caller names experts it will want soon (the next layer's router applied to the
// current hidden state); a background thread reads them into slots that hold nothing wanted.
// A prefetched expert that is evicted before its first use is counted as wasted.
#pragma once

#include <array>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "io/file_reader.h"
#include "io/weight_source.h"
#include "model/weights.h"

namespace smoe {

enum class EvictionPolicy { Lru, Lfu };

struct ExpertStoreOptions {
  int64_t slots = 0;  // experts held at once (≥ 1)
  EvictionPolicy eviction = EvictionPolicy::Lru;
  bool prefetch = true;
  bool direct_io = true;  // O_DIRECT where the file system allows it
};

// Counters of one layer, since the store was made or the last reset_stats().
struct ExpertLayerCounters {
  // When a layer's batch learns the experts it needs (begin_layer), each is a use: a hit if it is
  // in a slot (or on its way there from a guess), else a miss (read then, by the caller or the
  // background thread).
  uint64_t uses = 0;
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t prefetched = 0;       // read by the background thread (this layer's misses, guesses)
  uint64_t prefetch_used = 0;    // ... and used before being evicted
  uint64_t prefetch_wasted = 0;  // ... and evicted unused
  uint64_t guessed = 0;          // experts guessed for this layer from the layer before
  uint64_t guessed_right = 0;    // ... that the layer's router then chose
  uint64_t bytes_read = 0;       // demand and prefetch reads
  double wait_s = 0;             // time acquire() waited for reads
};

class ExpertStore {
 public:
  // `layers`: the bound weights, whose expert matrices are views of `src`'s files (never read
  // through: only their place in the file is taken). Throws smoe::Error when a file cannot be
  // opened or a matrix lies outside every tensor of `src`.
  ExpertStore(const WeightSource& src, const std::vector<LayerWeights>& layers,
              const ExpertStoreOptions& opts);
  ~ExpertStore();
  ExpertStore(const ExpertStore&) = delete;
  ExpertStore& operator=(const ExpertStore&) = delete;

  // Memory one slot takes for this model's experts (read alignment included).
  static uint64_t slot_bytes(const std::vector<LayerWeights>& layers);

  // Starts a layer's batch: the experts it needs (protected from eviction until the next call)
  // and, with prefetch on, those guessed for the next layer (read ahead in the background, after
  // this layer's own misses). Records how many of the earlier guess for `layer` were right.
  void begin_layer(int layer, const std::vector<int32_t>& needed,
                   const std::vector<int32_t>& next_guess);

  // Blocks until expert `e` of `layer` is in a slot and pins it there until release().
  const ExpertWeights& acquire(int layer, int e);
  void release(int layer, int e);

  int64_t slots() const { return static_cast<int64_t>(slots_.size()); }
  uint64_t expert_bytes() const;  // the largest expert's weights
  bool direct_io() const;
  EvictionPolicy eviction() const { return opts_.eviction; }
  bool prefetch_enabled() const { return opts_.prefetch; }
  std::vector<ExpertLayerCounters> stats() const;
  // Zeroes the counters, once the reads in flight have landed; with `trace`, records from now on
  // the experts acquired, in order, so that optimal_misses() can say what the best possible
  // eviction would have read.
  void reset_stats(bool trace = false);
  // The misses of Belady's optimal eviction (evict what is used farthest in the future) over the
  // recorded sequence, with this store's slots, starting from what they held at reset_stats; -1
  // without a trace. A lower bound for any policy without prefetch.
  int64_t optimal_misses() const;
  // The misses of the best cache that knows only how often each expert is used (the experts used
  // most often over the recorded sequence, as many as there are slots, held throughout; what any
  // policy can hope for when a layer's choice does not depend on the tokens before): -1 without a
  // trace.
  int64_t static_misses() const;

 private:
  enum class State { Empty, Loading, Ready };
  struct Slot {
    std::unique_ptr<std::byte, void (*)(void*)> buf{nullptr, nullptr};
    ExpertWeights w;
    int key = -1;
    State state = State::Empty;
    int pins = 0;
    uint64_t last_use = 0;
    bool prefetched = false;  // read by the background thread and not used yet
    bool guess = false;       // ... from the next-layer guess
  };
  struct Place {  // where one matrix's bytes are in the files
    const FileReader* reader = nullptr;
    uint64_t offset = 0;
  };

  int key(int layer, int e) const { return layer * n_experts_ + e; }
  int pick_victim(std::unique_lock<std::mutex>& lock, int layer, bool demand);
  int64_t quota(int layer) const;
  bool evict_before(const Slot& a, const Slot& b) const;
  void load(int slot, int k);  // reads without the lock held
  void claim(int slot, int k, bool prefetched, bool guess);
  void prefetch_loop();
  void note_use(int k);

  ExpertStoreOptions opts_;
  int n_experts_ = 0;
  uint64_t slot_bytes_ = 0;
  std::vector<ExpertWeights> file_;           // [key] the file's matrices
  std::vector<std::array<Place, 3>> places_;  // [key] gate, up, down
  std::vector<std::unique_ptr<FileReader>> readers_;
  std::vector<Slot> slots_;

  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::vector<int> where_;       // [key] slot, or -1
  std::vector<double> freq_;     // [key] decayed use counts (Lfu)
  std::vector<bool> protected_;  // [key] wanted by the current layer or guessed for the next
  std::vector<std::vector<int32_t>> guess_;  // [layer] the last guess for it
  std::deque<std::pair<int, bool>> queue_;   // keys to read ahead, and whether guessed
  uint64_t tick_ = 0;
  bool stop_ = false;
  std::vector<ExpertLayerCounters> counters_;
  bool tracing_ = false;
  std::vector<int> trace_;        // keys acquired since reset_stats(true)
  std::vector<int> trace_start_;  // keys in the slots then
  std::thread worker_;
};

// Belady's optimal eviction over `trace` (expert keys in the order used) with `slots` slots that
// hold `start` at first: how many uses miss. Exposed for tests.
int64_t belady_misses(const std::vector<int>& trace, const std::vector<int>& start, int64_t slots);

}  // namespace smoe
