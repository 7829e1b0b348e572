// Continuous batching: many requests on one model, one forward pass per step.
//
//   smoe::Scheduler sched(model, {.context = {.n_ctx = 4096, .max_seqs = 8}});
//   uint64_t id = sched.submit({.prompt = ids, .params = gp}, [](const smoe::RequestEvent& e) {
//     ... e.token.text, e.finished, e.finish_reason ...
//   });
//   while (sched.step()) {}  // or a thread: while (running) if (!sched.step())
//   sched.wait_for_work(..)
//
// Every step runs one forward pass over the next token of every decoding sequence plus pre-fill
// chunks of the others, within a token budget (ContextOptions::max_batch), so a long prompt
// never holds the others up for more than one chunk. Sequences join and leave between steps and
// sample with their own parameters and seeds. Keys and values live in the context's paged cache;
// requests that start alike share the blocks of their common prefix, and a request's n choices
// share its prompt's blocks (copied on write). When the pool runs out, the newest sequence is
// pre-empted (its blocks freed, recomputed when it is admitted again). submit, cancel and stats
// may be called from any thread; step from one thread at a time, which also runs the callbacks.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "smoe/engine.h"
#include "smoe/generate.h"

namespace smoe {

struct SchedulerOptions {
  // n_ctx: the longest sequence; max_seqs: sequences running at once (a request with n choices
  // takes n); max_batch: tokens per step; kv_*: the paged cache's pool.
  ContextOptions context;
  // Pre-fill tokens per step while other sequences are decoding. Smaller keeps the others' time
  // per token steady while a long prompt is read; larger reads prompts faster. 0: chosen from
  // measured step times so that a step with a chunk takes at most step_slack times a step of
  // decoding alone.
  int64_t prefill_chunk = 0;
  double step_slack = 1.5;
  bool prefix_caching = true;  // reuse the cached blocks of a common prefix
  int max_waiting = 64;        // requests queued beyond the running ones; submit refuses past it
};

struct Request {
  std::vector<int32_t> prompt;  // token ids (with BOS when the model wants it)
  GenerateParams params;        // n_predict (-1: to the context's end), sampling, stop, logprobs
  bool want_logprobs = false;   // the chosen token's log-probability (params.logprobs: how many
                                // alternatives besides)
  int n = 1;                    // completions of the prompt; choice i samples with seed + i
};

// What a request's callback receives: a token of one choice, or that choice's end.
struct RequestEvent {
  uint64_t request = 0;
  int choice = 0;
  // A generated token (id >= 0, text safe to show, possibly empty) or, with finished, the
  // choice's last text (id -1; held-back text released at the end, possibly empty).
  TokenEvent token;
  bool finished = false;
  std::string finish_reason;     // with finished: "stop" (end of sequence, stop string), "length"
                                 // (max tokens or the context's end), "cancelled", "error: ..."
  int64_t prompt_tokens = 0;     // with finished: the prompt's length
  int64_t cached_tokens = 0;     // of those, positions reused from the cache (first admission)
  int64_t generated_tokens = 0;  // with finished: tokens this choice generated
};

using RequestCallback = std::function<void(const RequestEvent&)>;

// One step, as the scheduler ran it.
struct StepInfo {
  int64_t tokens = 0;          // entries of the forward pass
  int64_t decode_seqs = 0;     // sequences that got one token
  int64_t prefill_tokens = 0;  // prompt tokens read (all chunks)
  double seconds = 0;          // the forward pass and sampling
};

struct SchedulerStats {
  int64_t running = 0, waiting = 0;  // sequences
  int64_t steps = 0, prompt_tokens = 0, cached_prompt_tokens = 0, generated_tokens = 0;
  int64_t preemptions = 0, requests_finished = 0;
  KvStats kv;
};

class Scheduler {
 public:
  Scheduler(std::shared_ptr<const Model> model, const SchedulerOptions& opts);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a request; its events go to `on_event` on the thread that runs step(). Returns its id,
  // or 0 when the queue is full (max_waiting requests wait already). Throws smoe::Error for a
  // request that can never run: empty prompt, a token outside the vocabulary, a prompt that
  // leaves no room in the context or the cache's pool, n outside 1..128.
  uint64_t submit(Request req, RequestCallback on_event);
  // Ends a request at the next step: its sequences leave and free their blocks, and each
  // unfinished choice gets a last event with reason "cancelled". Unknown ids are ignored.
  void cancel(uint64_t id);
  // Runs one step. Returns false when there was nothing to run.
  bool step();
  // Waits until a request or cancellation arrives, wake() is called, or `timeout` passes.
  void wait_for_work(std::chrono::milliseconds timeout);
  void wake();
  // Called after every step with what it ran (on the stepping thread).
  void set_step_callback(std::function<void(const StepInfo&)> cb);

  SchedulerStats stats() const;
  int64_t n_ctx() const;
  int max_seqs() const;
  const Model& model() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace smoe
