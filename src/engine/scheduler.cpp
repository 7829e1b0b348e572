// The scheduler's step: admit, pre-empt, plan one batch within the token budget and the pool's
// free blocks, run it, sample, stream. vLLM's scheduler is the model (ideas, not code): decoding
// sequences first, oldest first; then pre-fill chunks; the newest sequence pre-empted (freed,
// recomputed later) when the pool runs out.
#include "smoe/scheduler.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <unordered_map>

#include "core/error.h"
#include "engine/sequence.h"

namespace smoe {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kMaxChoices = 128;     // as OpenAI's API allows
constexpr int64_t kFirstChunk = 32;  // the automatic pre-fill chunk until steps are measured
constexpr int64_t kMinChunk = 8;

// What one step feeds of one sequence: tokens[start .. start + count).
struct Chunk {
  Sequence* seq;
  int64_t start, count;
  bool logits() const { return start + count == static_cast<int64_t>(seq->tokens.size()); }
};

struct Req {
  uint64_t id = 0;
  Request r;
  RequestCallback cb;
  std::vector<std::unique_ptr<Sequence>> seqs;
  int unfinished = 0;
  bool admitted = false;  // its first choice has run (it no longer counts as queued)
};

}  // namespace

struct Scheduler::Impl {
  std::shared_ptr<const Model> model;
  SchedulerOptions opts;
  Context ctx;
  std::shared_ptr<const Tokenizer> tok;
  int64_t budget, chunk_cap;
  // Measured: a step of decodes alone, and what each pre-fill token adds to a step (seconds).
  double t_decode = 0, t_prefill_token = 0;

  // Shared with other threads (under mu).
  mutable std::mutex mu;
  std::condition_variable cv;
  std::vector<std::unique_ptr<Req>> inbox;
  std::vector<uint64_t> cancels;
  bool woken = false;
  uint64_t next_id = 1;
  int64_t queued = 0;  // requests submitted and not yet admitted
  SchedulerStats shown;
  std::function<void(const StepInfo&)> on_step;

  // The stepping thread's own.
  std::unordered_map<uint64_t, std::unique_ptr<Req>> reqs;
  std::deque<Sequence*> waiting;
  std::vector<Sequence*> running;  // in admission order, oldest first
  std::vector<int> free_slots;
  SchedulerStats totals;
  std::vector<Chunk> plan;
  std::vector<BatchToken> batch;

  Impl(std::shared_ptr<const Model> m, const SchedulerOptions& o)
      : model(std::move(m)), opts(o), ctx(model, o.context), tok(model->tokenizer()) {
    budget = std::max<int64_t>(1, o.context.max_batch);
    chunk_cap = std::min(o.prefill_chunk > 0 ? o.prefill_chunk : kFirstChunk, budget);
    for (int s = o.context.max_seqs - 1; s >= 0; --s) free_slots.push_back(s);
  }

  void deliver(Sequence& s, const RequestEvent& e);
  void take_inbox();
  // Ends every unfinished choice of a request with `reason` (the request is gone afterwards).
  void end_request(uint64_t id, const std::string& reason);
  void release(Sequence& s);
  void preempt(Sequence& s);
  int64_t avail(int64_t planned) const { return ctx.kv_stats().blocks_free - planned; }
  int64_t fit(const Sequence& s, int64_t want, int64_t free_blocks) const;
  bool plan_decodes(int64_t& planned, int64_t& used);
  void plan_prefills(int64_t& planned, int64_t& used, bool decoding);
  void admit(int64_t& planned, int64_t& used, bool decoding);
  void run_plan(StepInfo& info);
  void start_siblings(Req& r, Sequence& leader, const float* logits);
  void accept(Sequence& s, const float* logits);
  void publish_stats();
  void learn(const StepInfo& info);
};

// Folds a step's time into the estimates and, with an automatic chunk, sizes the next chunks: a
// step with a chunk of c pre-fill tokens takes about t_decode + c·t_prefill_token.
void Scheduler::Impl::learn(const StepInfo& info) {
  const auto ema = [](double& v, double x) { v = v > 0 ? 0.8 * v + 0.2 * x : x; };
  if (info.decode_seqs > 0 && info.prefill_tokens == 0) ema(t_decode, info.seconds);
  if (info.decode_seqs > 0 && info.prefill_tokens > 0 && t_decode > 0)
    ema(t_prefill_token,
        std::max(info.seconds - t_decode, 0.0) / static_cast<double>(info.prefill_tokens));
  if (opts.prefill_chunk > 0 || t_decode <= 0 || t_prefill_token <= 0) return;
  const double c = (opts.step_slack - 1.0) * t_decode / t_prefill_token;
  chunk_cap = std::clamp<int64_t>(static_cast<int64_t>(c), kMinChunk, budget);
}

void Scheduler::Impl::deliver(Sequence& s, const RequestEvent& e) {
  auto it = reqs.find(s.request);
  if (it == reqs.end()) return;
  Req& r = *it->second;
  if (r.cb) r.cb(e);
  if (!e.finished) return;
  if (--r.unfinished > 0) return;
  ++totals.requests_finished;
  if (!r.admitted) {
    std::lock_guard<std::mutex> lock(mu);
    --queued;
  }
  reqs.erase(it);  // its sequences with it: `s` is gone now
}

// Gives the sequence's slot and blocks back (its full blocks stay cached for reuse).
void Scheduler::Impl::release(Sequence& s) {
  if (s.slot >= 0) {
    if (opts.prefix_caching) ctx.share_prefix(s.slot, s.tokens);
    ctx.clear(s.slot);
    free_slots.push_back(s.slot);
    s.slot = -1;
  }
  running.erase(std::remove(running.begin(), running.end(), &s), running.end());
  waiting.erase(std::remove(waiting.begin(), waiting.end(), &s), waiting.end());
}

// Frees the sequence's blocks and queues it first in line: it is recomputed when admitted again
// (from its cached full blocks where they survive), its sampler untouched.
void Scheduler::Impl::preempt(Sequence& s) {
  release(s);
  s.n_cached = 0;
  waiting.push_front(&s);
  ++totals.preemptions;
}

void Scheduler::Impl::take_inbox() {
  std::vector<std::unique_ptr<Req>> in;
  std::vector<uint64_t> cancel_ids;
  {
    std::lock_guard<std::mutex> lock(mu);
    in.swap(inbox);
    cancel_ids.swap(cancels);
    woken = false;
  }
  for (auto& r : in) {
    Req& q = *r;
    const int64_t vocab = ctx.n_vocab();
    for (int c = 0; c < q.r.n; ++c) {
      q.seqs.push_back(std::make_unique<Sequence>(q.r, q.id, c, vocab, tok));
      q.seqs.back()->held = c > 0;  // choices > 0 start from the leader's prompt
    }
    q.unfinished = q.r.n;
    waiting.push_back(q.seqs[0].get());
    reqs.emplace(q.id, std::move(r));
  }
  for (uint64_t id : cancel_ids) end_request(id, "cancelled");
}

void Scheduler::Impl::end_request(uint64_t id, const std::string& reason) {
  auto it = reqs.find(id);
  if (it == reqs.end()) return;
  std::vector<Sequence*> open;
  for (auto& s : it->second->seqs)
    if (!s->finished) open.push_back(s.get());
  for (Sequence* s : open) {
    release(*s);
    deliver(*s, s->finish(reason));
  }
}

// The longest run of tokens from s->n_cached, at most `want`, whose blocks fit in free_blocks.
int64_t Scheduler::Impl::fit(const Sequence& s, int64_t want, int64_t free_blocks) const {
  const int64_t bt = std::max<int64_t>(1, ctx.kv_stats().block_tokens);
  int64_t n = want;
  while (n > 0 && ctx.kv_blocks_needed(s.slot, s.n_cached + n) > free_blocks)
    n = n > bt ? ((s.n_cached + n - 1) / bt) * bt - s.n_cached : n - 1;  // back to a block edge
  return std::max<int64_t>(n, 0);
}

// One token for every decoding sequence, oldest first; the newest are pre-empted while the pool
// lacks blocks. Returns whether any sequence decodes.
bool Scheduler::Impl::plan_decodes(int64_t& planned, int64_t& used) {
  bool any = false;
  for (size_t i = 0; i < running.size() && used < budget; ++i) {
    Sequence* s = running[i];
    if (s->pending() != 1) continue;
    int64_t need = ctx.kv_blocks_needed(s->slot, s->n_cached + 1);
    while (need > avail(planned) && running.back() != s) preempt(*running.back());
    if (need > avail(planned)) {
      if (i == 0) {  // alone and still no room: the pool cannot hold this sequence any longer
        Sequence& self = *s;
        release(self);
        deliver(self, self.finish("length"));
      } else {
        preempt(*s);
      }
      break;
    }
    planned += need;
    ++used;
    plan.push_back({s, s->n_cached, 1});
    any = true;
  }
  return any;
}

// Pre-fill chunks of running sequences that have more than one token to feed.
void Scheduler::Impl::plan_prefills(int64_t& planned, int64_t& used, bool decoding) {
  for (Sequence* s : running) {
    if (used >= budget) return;
    if (s->pending() <= 1) continue;
    const int64_t cap = decoding ? chunk_cap : budget;
    const int64_t n = fit(*s, std::min({s->pending(), budget - used, cap}), avail(planned));
    if (n <= 0) continue;
    planned += ctx.kv_blocks_needed(s->slot, s->n_cached + n);
    used += n;
    plan.push_back({s, s->n_cached, n});
  }
}

// New (or pre-empted) sequences join while slots, budget and blocks allow: a sequence is admitted
// when the pool can hold its whole prompt, so admissions do not pre-empt each other.
void Scheduler::Impl::admit(int64_t& planned, int64_t& used, bool decoding) {
  while (!waiting.empty() && !free_slots.empty() && used < budget) {
    Sequence* s = waiting.front();
    s->slot = free_slots.back();
    if (opts.prefix_caching && s->n_cached == 0) s->n_cached = ctx.reuse_prefix(s->slot, s->tokens);
    const int64_t whole = ctx.kv_blocks_needed(s->slot, static_cast<int64_t>(s->tokens.size()));
    const int64_t cap = decoding || !plan.empty() ? chunk_cap : budget;
    const int64_t n = fit(*s, std::min({s->pending(), budget - used, cap}), avail(planned));
    if (n <= 0 || (whole + 1 > avail(planned) && !running.empty())) {
      ctx.clear(s->slot);  // gives back what reuse_prefix attached
      s->slot = -1;
      s->n_cached = 0;
      return;
    }
    free_slots.pop_back();
    waiting.pop_front();
    running.push_back(s);
    if (s->cached_at_start < 0) {
      s->cached_at_start = s->n_cached;
      totals.prompt_tokens += s->n_prompt;
      totals.cached_prompt_tokens += s->n_cached;
      Req& r = *reqs.at(s->request);
      if (s->choice == 0 && !r.admitted) {
        r.admitted = true;
        std::lock_guard<std::mutex> lock(mu);
        --queued;
      }
    }
    planned += ctx.kv_blocks_needed(s->slot, s->n_cached + n);
    used += n;
    plan.push_back({s, s->n_cached, n});
  }
}

// Choices 1..n-1 of a request start when its first choice has read the prompt: each takes the
// prompt's blocks (shared, copied on write) and samples its first token from the same logits.
// Without a free slot a choice waits in line and reads the prompt itself (from the prefix cache
// where it can).
void Scheduler::Impl::start_siblings(Req& r, Sequence& leader, const float* logits) {
  for (size_t c = 1; c < r.seqs.size(); ++c) {
    Sequence& s = *r.seqs[c];
    if (!s.held) continue;
    s.held = false;
    if (free_slots.empty()) {
      waiting.push_back(&s);
      continue;
    }
    s.slot = free_slots.back();
    free_slots.pop_back();
    ctx.fork(leader.slot, s.slot);
    s.n_cached = leader.n_cached;
    s.cached_at_start = leader.cached_at_start;
    running.push_back(&s);
    accept(s, logits);
  }
}

void Scheduler::Impl::accept(Sequence& s, const float* logits) {
  RequestEvent tok_ev, end_ev;
  const bool ended = s.accept(logits, ctx.n_ctx(), tok_ev, end_ev);
  if (tok_ev.token.id >= 0) {
    ++totals.generated_tokens;
    deliver(s, tok_ev);
  }
  if (ended) {
    release(s);
    deliver(s, end_ev);
  }
}

void Scheduler::Impl::run_plan(StepInfo& info) {
  batch.clear();
  for (const Chunk& c : plan) {
    for (int64_t i = c.start; i < c.start + c.count; ++i)
      batch.push_back({c.seq->tokens[static_cast<size_t>(i)], i, c.seq->slot,
                       i + 1 == c.start + c.count && c.logits()});
    if (c.count > 1 || c.seq->pending() > 1)
      info.prefill_tokens += c.count;
    else
      ++info.decode_seqs;
  }
  info.tokens = static_cast<int64_t>(batch.size());
  const float* logits = nullptr;
  try {
    logits = ctx.decode(batch);
  } catch (const std::exception& e) {  // not expected: the plan was checked against the cache
    std::vector<uint64_t> failed;
    for (const Chunk& c : plan) failed.push_back(c.seq->request);
    for (uint64_t id : failed) end_request(id, std::string("error: ") + e.what());
    plan.clear();
    return;
  }
  const int64_t vocab = ctx.n_vocab();
  int64_t row = 0;
  for (const Chunk& c : plan) {
    Sequence& s = *c.seq;
    const bool wants = c.logits();
    s.n_cached += c.count;
    if (opts.prefix_caching) ctx.share_prefix(s.slot, s.tokens);
    if (!wants) continue;
    const float* lg = logits + (row++) * vocab;
    Req& r = *reqs.at(s.request);
    if (s.choice == 0 && s.generated == 0 && r.seqs.size() > 1) start_siblings(r, s, lg);
    accept(s, lg);
  }
}

void Scheduler::Impl::publish_stats() {
  SchedulerStats st = totals;
  st.running = static_cast<int64_t>(running.size());
  st.waiting = static_cast<int64_t>(waiting.size());
  st.kv = ctx.kv_stats();
  std::lock_guard<std::mutex> lock(mu);
  st.waiting += static_cast<int64_t>(inbox.size());
  shown = st;
}

Scheduler::Scheduler(std::shared_ptr<const Model> model, const SchedulerOptions& opts)
    : impl_(std::make_unique<Impl>(std::move(model), opts)) {
  impl_->publish_stats();
}

Scheduler::~Scheduler() = default;

uint64_t Scheduler::submit(Request req, RequestCallback on_event) {
  Impl& m = *impl_;
  const int64_t n = static_cast<int64_t>(req.prompt.size()), vocab = m.ctx.n_vocab();
  if (n == 0) fail("the prompt is empty: give at least one token");
  for (int32_t id : req.prompt)
    if (id < 0 || id >= vocab) fail("token id {} is outside the vocabulary (0..{})", id, vocab - 1);
  if (n >= m.ctx.n_ctx())
    fail("the prompt has {} tokens but the context holds {}: shorten it or raise the context size",
         n, m.ctx.n_ctx());
  const KvStats kv = m.ctx.kv_stats();
  if ((n + 1 + kv.block_tokens - 1) / kv.block_tokens + 1 > kv.blocks_total)
    fail("the prompt has {} tokens but the KV cache holds {} positions in all", n,
         (kv.blocks_total - 1) * kv.block_tokens);
  if (req.n < 1 || req.n > kMaxChoices) fail("n must be in 1..{}, got {}", kMaxChoices, req.n);
  auto r = std::make_unique<Req>();
  r->r = std::move(req);
  r->cb = std::move(on_event);
  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    if (m.queued >= m.opts.max_waiting) return 0;
    id = r->id = m.next_id++;
    ++m.queued;
    m.inbox.push_back(std::move(r));
  }
  m.cv.notify_all();
  return id;
}

void Scheduler::cancel(uint64_t id) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->cancels.push_back(id);
  }
  impl_->cv.notify_all();
}

void Scheduler::wake() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->woken = true;
  }
  impl_->cv.notify_all();
}

void Scheduler::wait_for_work(std::chrono::milliseconds timeout) {
  Impl& m = *impl_;
  std::unique_lock<std::mutex> lock(m.mu);
  m.cv.wait_for(lock, timeout, [&] { return !m.inbox.empty() || !m.cancels.empty() || m.woken; });
}

void Scheduler::set_step_callback(std::function<void(const StepInfo&)> cb) {
  impl_->on_step = std::move(cb);
}

bool Scheduler::step() {
  Impl& m = *impl_;
  const auto t0 = Clock::now();
  m.take_inbox();
  m.plan.clear();
  int64_t planned = 0, used = 0;
  const bool decoding = m.plan_decodes(planned, used);
  m.plan_prefills(planned, used, decoding);
  m.admit(planned, used, decoding);
  const bool stuck = m.plan.empty() && !m.running.empty();
  if (stuck) {
    // Nothing fits although sequences run: the pool is held by pre-fills that cannot go on.
    // The newest gives way; if it is alone, its prompt can never fit.
    Sequence& s = *m.running.back();
    if (m.running.size() > 1) {
      m.preempt(s);
    } else {
      m.release(s);
      m.deliver(s, s.finish("length"));
    }
  }
  StepInfo info;
  if (!m.plan.empty()) {
    m.run_plan(info);
    ++m.totals.steps;
  }
  info.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!m.plan.empty()) m.learn(info);
  m.publish_stats();
  if (m.plan.empty()) return stuck;  // after giving way, the next step can run
  if (m.on_step) m.on_step(info);
  return true;
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->shown;
}

int64_t Scheduler::n_ctx() const {
  return impl_->ctx.n_ctx();
}
int Scheduler::max_seqs() const {
  return impl_->opts.context.max_seqs;
}
const Model& Scheduler::model() const {
  return *impl_->model;
}

}  // namespace smoe
