// One choice of a request as the scheduler runs it: its tokens so far, how many of them the KV
// cache holds, and what turns each row of logits into streamed text (its own sampler and seed,
// stop strings, a UTF-8 stream decoder).
//
// A sequence's tokens still to feed are tokens[n_cached..]: the whole prompt at first, one token
// (the last sampled) while it decodes, everything again after it was pre-empted. The scheduler
// feeds them in chunks; the chunk that reaches the end asks for logits, and accept() samples the
// next token from them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/sampler.h"
#include "engine/stop_matcher.h"
#include "smoe/scheduler.h"
#include "smoe/tokenizer.h"

namespace smoe {

class Sequence {
 public:
  Sequence(const Request& req, uint64_t request_id, int choice, int64_t n_vocab,
           std::shared_ptr<const Tokenizer> tok);

  uint64_t request = 0;
  int choice = 0;
  std::vector<int32_t> tokens;  // the prompt, then generated tokens
  int64_t n_prompt = 0;
  int64_t n_cached = 0;          // tokens[0..n_cached) are in the KV cache
  int slot = -1;                 // the context's sequence id while running
  int64_t cached_at_start = -1;  // positions reused from the cache when first admitted
  int64_t generated = 0;
  bool held = false;  // a choice > 0 waiting to share its leader's prompt
  bool finished = false;

  int64_t pending() const { return static_cast<int64_t>(tokens.size()) - n_cached; }

  // Samples the next token from `logits` and appends it. Fills `token` (the event for it) and,
  // when the choice ends with it, `end` (the last text and the reason). Returns whether it ended.
  bool accept(const float* logits, int64_t n_ctx, RequestEvent& token, RequestEvent& end);
  // Ends the choice without a token (cancelled, error, no room left): the event to send.
  RequestEvent finish(const std::string& reason);

 private:
  RequestEvent base() const;
  const Request& req_;
  int64_t n_vocab_;
  std::shared_ptr<const Tokenizer> tok_;
  Sampler sampler_;
  StopMatcher stops_;
  std::unique_ptr<StreamDecoder> dec_;
  std::vector<TokenLogprob> top_;
  std::string text_;  // the text of the token event being built (its string_view points here)
  std::string rest_;  // the text of the end event
};

}  // namespace smoe
