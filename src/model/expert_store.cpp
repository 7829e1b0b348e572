#include "model/expert_store.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <set>

#include "core/error.h"

namespace smoe {
namespace {

uint64_t matrix_bytes(const Matrix& m) {
  return static_cast<uint64_t>(m.row_bytes) * static_cast<uint64_t>(m.rows);
}

// A matrix's room in a slot: its bytes plus what a direct read of them needs around them.
uint64_t region_bytes(const Matrix& m) {
  const uint64_t a = FileReader::kAlign;
  return (FileReader::span_capacity(matrix_bytes(m)) + a - 1) / a * a;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

uint64_t ExpertStore::slot_bytes(const std::vector<LayerWeights>& layers) {
  uint64_t most = 0;
  for (const LayerWeights& l : layers)
    for (const ExpertWeights& e : l.experts)
      most = std::max(most, region_bytes(e.gate) + region_bytes(e.up) + region_bytes(e.down));
  return most;
}

ExpertStore::ExpertStore(const WeightSource& src, const std::vector<LayerWeights>& layers,
                         const ExpertStoreOptions& opts)
    : opts_(opts) {
  if (opts.slots < 1) fail("an expert store needs at least one slot, got {}", opts.slots);
  n_experts_ = layers.empty() ? 0 : static_cast<int>(layers[0].experts.size());
  std::unordered_map<std::string, const FileReader*> readers;
  const auto place = [&](const Matrix& m) {
    const TensorView* t = src.containing(m.data, matrix_bytes(m));
    if (!t) fail("{}: an expert matrix lies outside every tensor of the file", src.description());
    const FileReader*& r = readers[t->file];
    if (!r) r = readers_.emplace_back(std::make_unique<FileReader>(t->file, opts.direct_io)).get();
    return Place{r, t->file_offset + static_cast<uint64_t>(m.data - t->data)};
  };
  for (const LayerWeights& l : layers) {
    if (static_cast<int>(l.experts.size()) != n_experts_)
      fail("every layer of an expert store needs {} experts", n_experts_);
    for (const ExpertWeights& e : l.experts) {
      file_.push_back(e);
      places_.push_back({place(e.gate), place(e.up), place(e.down)});
    }
  }
  slot_bytes_ = slot_bytes(layers);
  slots_.resize(static_cast<size_t>(opts.slots));
  for (Slot& s : slots_) s.buf = {alloc_read_buffer(slot_bytes_), std::free};
  where_.assign(file_.size(), -1);
  freq_.assign(file_.size(), 0.0);
  protected_.assign(file_.size(), false);
  guess_.resize(layers.size());
  counters_.resize(layers.size());
  if (opts.prefetch) worker_ = std::thread([this] { prefetch_loop(); });
}

ExpertStore::~ExpertStore() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  changed_.notify_all();
  if (worker_.joinable()) worker_.join();
}

uint64_t ExpertStore::expert_bytes() const {
  uint64_t most = 0;
  for (const ExpertWeights& e : file_)
    most = std::max(most, matrix_bytes(e.gate) + matrix_bytes(e.up) + matrix_bytes(e.down));
  return most;
}

bool ExpertStore::direct_io() const {
  return std::all_of(readers_.begin(), readers_.end(), [](const auto& r) { return r->direct(); });
}

void ExpertStore::begin_layer(int layer, const std::vector<int32_t>& needed,
                              const std::vector<int32_t>& next_guess) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ExpertLayerCounters& c = counters_[static_cast<size_t>(layer)];
    std::vector<int32_t>& g = guess_[static_cast<size_t>(layer)];
    c.guessed += g.size();
    for (int32_t e : g) c.guessed_right += std::count(needed.begin(), needed.end(), e) ? 1 : 0;
    g.clear();
    // A hit: in a slot, or on its way there from a guess, when the layer learns what it needs.
    for (int32_t e : needed) {
      const int k = key(layer, e), s = where_[static_cast<size_t>(k)];
      const bool hit = s >= 0 && (slots_[static_cast<size_t>(s)].state == State::Ready ||
                                  slots_[static_cast<size_t>(s)].guess);
      ++c.uses;
      ++(hit ? c.hits : c.misses);
      if (tracing_) trace_.push_back(k);
    }
    std::fill(protected_.begin(), protected_.end(), false);
    for (int32_t e : needed) protected_[static_cast<size_t>(key(layer, e))] = true;
    const bool has_next = layer + 1 < static_cast<int>(guess_.size());
    if (has_next) {
      guess_[static_cast<size_t>(layer + 1)] = next_guess;
      for (int32_t e : next_guess) protected_[static_cast<size_t>(key(layer + 1, e))] = true;
    }
    if (!opts_.prefetch) return;
    // Reads still queued for what is no longer wanted are dropped; then this layer's misses, last
    // first (the caller reads the first one itself), then the guess.
    std::erase_if(queue_, [&](const auto& q) { return !protected_[static_cast<size_t>(q.first)]; });
    const auto enqueue = [&](int k, bool guess) {
      if (where_[static_cast<size_t>(k)] >= 0) return;
      for (const auto& q : queue_)
        if (q.first == k) return;
      queue_.push_back({k, guess});
    };
    for (auto it = needed.rbegin(); it != needed.rend(); ++it) enqueue(key(layer, *it), false);
    if (has_next)
      for (int32_t e : next_guess) enqueue(key(layer + 1, e), true);
  }
  changed_.notify_all();
}

// The slots each layer may hold before it takes from its own: an equal share, the remainder to
// the first layers. Per-layer shares keep a token's pass through the layers from evicting exactly
// the experts the next layers are about to use (what one global LRU does on a cyclic pattern).
int64_t ExpertStore::quota(int layer) const {
  const int64_t n = static_cast<int64_t>(guess_.size()), s = slots();
  return s / n + (layer < s % n ? 1 : 0);
}

// Whether slot a should go before slot b under the eviction policy.
bool ExpertStore::evict_before(const Slot& a, const Slot& b) const {
  const bool older = a.last_use < b.last_use;
  if (opts_.eviction == EvictionPolicy::Lru) return older;
  const double fa = freq_[static_cast<size_t>(a.key)], fb = freq_[static_cast<size_t>(b.key)];
  return fa < fb || (fa == fb && older);
}

// An unpinned slot to take for an expert of `layer`: an empty one; else, while the layer holds
// fewer than its share, one of a layer holding more than its share; else one of its own; else any.
// Among those, by the eviction policy, first among experts no one wants now; a demand read may
// then take a wanted one (already used, or wanted later) rather than wait, and waits only while
// every slot is pinned or being read. Returns -1 for a prefetch that would evict something wanted.
int ExpertStore::pick_victim(std::unique_lock<std::mutex>& lock, int layer, bool demand) {
  const int n_layers = static_cast<int>(guess_.size());
  for (;;) {
    std::vector<int64_t> held(static_cast<size_t>(n_layers), 0);
    for (const Slot& sl : slots_) {
      if (sl.state == State::Empty) return static_cast<int>(&sl - slots_.data());
      ++held[static_cast<size_t>(sl.key / n_experts_)];
    }
    const bool under = held[static_cast<size_t>(layer)] < quota(layer);
    const auto over = [&](int l) { return held[static_cast<size_t>(l)] > quota(l); };
    for (int pass = 0; pass < (demand ? 2 : 1); ++pass)
      for (int scope = 0; scope < 2; ++scope) {
        int best = -1;
        for (int s = 0; s < static_cast<int>(slots_.size()); ++s) {
          const Slot& sl = slots_[static_cast<size_t>(s)];
          if (sl.state != State::Ready || sl.pins > 0) continue;
          if (pass == 0 && protected_[static_cast<size_t>(sl.key)]) continue;
          const int l = sl.key / n_experts_;
          if (scope == 0 && (under ? !over(l) : l != layer)) continue;
          if (best < 0 || evict_before(sl, slots_[static_cast<size_t>(best)])) best = s;
        }
        if (best >= 0) return best;
      }
    if (!demand) return -1;
    changed_.wait(lock);
  }
}

void ExpertStore::claim(int slot, int k, bool prefetched, bool guess) {
  Slot& s = slots_[static_cast<size_t>(slot)];
  if (s.key >= 0) {
    if (s.prefetched) ++counters_[static_cast<size_t>(s.key / n_experts_)].prefetch_wasted;
    where_[static_cast<size_t>(s.key)] = -1;
  }
  s.key = k;
  s.state = State::Loading;
  s.prefetched = prefetched;
  s.guess = guess;
  where_[static_cast<size_t>(k)] = slot;
  if (prefetched) ++counters_[static_cast<size_t>(k / n_experts_)].prefetched;
}

void ExpertStore::load(int slot, int k) {
  ExpertWeights w = file_[static_cast<size_t>(k)];
  std::byte* p = slots_[static_cast<size_t>(slot)].buf.get();
  Matrix* ms[] = {&w.gate, &w.up, &w.down};
  for (int i = 0; i < 3; ++i) {
    const Place& pl = places_[static_cast<size_t>(k)][static_cast<size_t>(i)];
    std::byte* d = pl.reader->read_span(pl.offset, matrix_bytes(*ms[i]), p);
    p += region_bytes(*ms[i]);
    ms[i]->data = d;
  }
  slots_[static_cast<size_t>(slot)].w = w;
}

void ExpertStore::note_use(int k) {
  freq_[static_cast<size_t>(k)] += 1.0;
  if (++tick_ % (8 * freq_.size()) == 0)  // counts halve every 8 uses per expert
    for (double& f : freq_) f *= 0.5;
}

const ExpertWeights& ExpertStore::acquire(int layer, int e) {
  const auto t0 = std::chrono::steady_clock::now();
  const int k = key(layer, e);
  std::unique_lock<std::mutex> lock(mu_);
  ExpertLayerCounters& c = counters_[static_cast<size_t>(layer)];
  bool waited = false;
  for (;;) {
    const int s = where_[static_cast<size_t>(k)];
    if (s >= 0) {
      Slot& sl = slots_[static_cast<size_t>(s)];
      if (sl.state == State::Loading) {
        waited = true;
        changed_.wait(lock);
        continue;
      }
      ++sl.pins;
      sl.last_use = tick_;
      if (sl.prefetched) ++c.prefetch_used;
      sl.prefetched = sl.guess = false;
      note_use(k);
      if (waited) c.wait_s += seconds_since(t0);
      return sl.w;
    }
    const int v = pick_victim(lock, layer, true);
    if (where_[static_cast<size_t>(k)] >= 0) continue;  // another thread read it meanwhile
    claim(v, k, false, false);
    lock.unlock();
    try {
      load(v, k);
    } catch (...) {
      lock.lock();
      slots_[static_cast<size_t>(v)].state = State::Empty;
      slots_[static_cast<size_t>(v)].key = -1;
      where_[static_cast<size_t>(k)] = -1;
      changed_.notify_all();
      throw;
    }
    lock.lock();
    slots_[static_cast<size_t>(v)].state = State::Ready;
    c.bytes_read += matrix_bytes(file_[static_cast<size_t>(k)].gate) +
                    matrix_bytes(file_[static_cast<size_t>(k)].up) +
                    matrix_bytes(file_[static_cast<size_t>(k)].down);
    waited = true;
    changed_.notify_all();
  }
}

void ExpertStore::release(int layer, int e) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    const int s = where_[static_cast<size_t>(key(layer, e))];
    if (s >= 0 && slots_[static_cast<size_t>(s)].pins > 0) --slots_[static_cast<size_t>(s)].pins;
  }
  changed_.notify_all();
}

void ExpertStore::prefetch_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (queue_.empty()) {
      changed_.wait(lock);
      continue;
    }
    const auto [k, guess] = queue_.front();
    queue_.pop_front();
    if (where_[static_cast<size_t>(k)] >= 0) continue;
    const int v = pick_victim(lock, k / n_experts_, false);
    if (v < 0) continue;
    claim(v, k, true, guess);
    lock.unlock();
    bool ok = true;
    try {
      load(v, k);
    } catch (const std::exception&) {
      ok = false;  // the demand read, if it comes, reports the error
    }
    lock.lock();
    Slot& sl = slots_[static_cast<size_t>(v)];
    if (ok) {
      sl.state = State::Ready;
      const ExpertWeights& f = file_[static_cast<size_t>(k)];
      counters_[static_cast<size_t>(k / n_experts_)].bytes_read +=
          matrix_bytes(f.gate) + matrix_bytes(f.up) + matrix_bytes(f.down);
    } else {
      sl.state = State::Empty;
      sl.key = -1;
      sl.prefetched = sl.guess = false;
      where_[static_cast<size_t>(k)] = -1;
    }
    changed_.notify_all();
  }
}

std::vector<ExpertLayerCounters> ExpertStore::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counters_;
}

void ExpertStore::reset_stats(bool trace) {
  std::unique_lock<std::mutex> lock(mu_);
  // A read in flight is counted when it lands: let it land first, so that its bytes and its
  // count (taken when it began) fall on the same side of the reset.
  changed_.wait(lock, [&] {
    return std::none_of(slots_.begin(), slots_.end(),
                        [](const Slot& s) { return s.state == State::Loading; });
  });
  std::fill(counters_.begin(), counters_.end(), ExpertLayerCounters{});
  tracing_ = trace;
  trace_.clear();
  trace_start_.clear();
  for (const Slot& s : slots_)
    if (s.key >= 0 && s.state == State::Ready) trace_start_.push_back(s.key);
}

int64_t ExpertStore::optimal_misses() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!tracing_) return -1;
  return belady_misses(trace_, trace_start_, static_cast<int64_t>(slots_.size()));
}

int64_t ExpertStore::static_misses() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!tracing_) return -1;
  std::vector<int64_t> uses(file_.size(), 0);
  for (int k : trace_) ++uses[static_cast<size_t>(k)];
  std::vector<int> keys(file_.size());
  for (size_t k = 0; k < keys.size(); ++k) keys[k] = static_cast<int>(k);
  std::stable_sort(keys.begin(), keys.end(), [&](int a, int b) {
    return uses[static_cast<size_t>(a)] > uses[static_cast<size_t>(b)];
  });
  // Every use of an expert not kept misses; a kept one not in the slots at the start is read once.
  int64_t misses = static_cast<int64_t>(trace_.size());
  for (size_t i = 0; i < std::min(keys.size(), slots_.size()); ++i) {
    const int64_t n = uses[static_cast<size_t>(keys[i])];
    const bool held = std::count(trace_start_.begin(), trace_start_.end(), keys[i]) > 0;
    misses -= n - (n > 0 && !held ? 1 : 0);
  }
  return misses;
}

int64_t belady_misses(const std::vector<int>& trace, const std::vector<int>& start, int64_t slots) {
  const size_t n = trace.size();
  constexpr size_t kNever = SIZE_MAX;
  std::vector<size_t> next(n, kNever);  // next[i]: where trace[i]'s key comes again
  std::unordered_map<int, size_t> seen;
  for (size_t i = n; i-- > 0;) {
    auto it = seen.find(trace[i]);
    if (it != seen.end()) next[i] = it->second;
    seen[trace[i]] = i;
  }
  std::set<std::pair<size_t, int>> held;  // (next use, key), farthest last
  std::unordered_map<int, size_t> held_next;
  const auto hold = [&](int key, size_t at) {
    held.insert({at, key});
    held_next[key] = at;
  };
  for (int key : start) {
    if (static_cast<int64_t>(held.size()) >= slots) break;
    auto it = seen.find(key);
    hold(key, it == seen.end() ? kNever : it->second);
  }
  int64_t misses = 0;
  for (size_t i = 0; i < n; ++i) {
    auto h = held_next.find(trace[i]);
    if (h != held_next.end()) {
      held.erase({h->second, trace[i]});
      held_next.erase(h);
    } else {
      ++misses;
      if (static_cast<int64_t>(held.size()) >= slots) {
        auto last = std::prev(held.end());
        held_next.erase(last->second);
        held.erase(last);
      }
    }
    hold(trace[i], next[i]);
  }
  return misses;
}

}  // namespace smoe
