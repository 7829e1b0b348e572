// Text generation on top of Context: sampling, stop strings, streaming, statistics.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "smoe/engine.h"

namespace smoe {

// The sampler chain, in order: penalties → (greedy | top-k → temperature → top-p → min-p → draw).
struct SamplingParams {
  float temperature = 0.8f;        // <= 0: greedy (argmax)
  int top_k = 40;                  // <= 0: off
  float top_p = 0.95f;             // >= 1: off
  float min_p = 0.05f;             // <= 0: off
  float repeat_penalty = 1.0f;     // 1: off (divides positive logits, multiplies negative ones)
  int repeat_last_n = 64;          // window of past tokens the penalties see (-1: all, 0: none)
  float frequency_penalty = 0.0f;  // minus count·f
  float presence_penalty = 0.0f;   // minus p once a token appeared
  uint64_t seed = 0;               // same seed, same text (whatever the thread count)
  // Added to these tokens' logits before anything else (-100 all but bans a token, +100 all but
  // forces it); ids outside the vocabulary are ignored.
  std::vector<std::pair<int32_t, float>> logit_bias;
};

struct TokenLogprob {
  int32_t id;
  float logprob;
};

// One generated token as it is streamed.
struct TokenEvent {
  int32_t id = 0;
  std::string_view text;  // text now safe to show (may be empty)
  float logprob = 0.0f;   // log-probability of the chosen token (raw model)
  const std::vector<TokenLogprob>* top = nullptr;  // the top alternatives when asked for
};

struct GenerateParams {
  int n_predict = 128;  // new tokens at most (-1: until the context is full)
  SamplingParams sampling;
  std::vector<std::string> stop;  // stop strings, matched on text; never printed
  bool stop_at_eos = true;
  int logprobs = 0;          // report this many top alternatives per token
  bool echo_prompt = false;  // first deliver the prompt's text as an event with id -1
};

struct GenerateStats {
  int64_t n_prompt = 0;  // tokens pre-filled (not counting ones reused from the cache)
  int64_t n_generated = 0;
  double prompt_seconds = 0, gen_seconds = 0, first_token_seconds = 0;
  std::string stop_reason;  // "eos", "stop string", "length", "context full", "cancelled"
  double prompt_tps() const { return prompt_seconds > 0 ? n_prompt / prompt_seconds : 0; }
  double gen_tps() const { return gen_seconds > 0 ? n_generated / gen_seconds : 0; }
};

// A conversation with one model: keeps its KV cache between calls and reuses the longest prefix
// the new prompt shares with what was already processed.
class Session {
 public:
  Session(std::shared_ptr<const Model> model, const ContextOptions& opts);
  ~Session();

  // Pre-fills `prompt` (token ids) and generates. `on_token` is called for every token; return
  // false from it to stop (reason "cancelled"). The text passed is what may be shown now:
  // complete UTF-8, stop strings held back and never shown.
  GenerateStats generate(const std::vector<int32_t>& prompt, const GenerateParams& params,
                         const std::function<bool(const TokenEvent&)>& on_token);

  // Tokens in the cache (prompt and generated so far).
  const std::vector<int32_t>& history() const { return history_; }
  void reset();
  Context& context() { return *ctx_; }
  const Model& model() const { return *model_; }

 private:
  const float* prefill(const std::vector<int32_t>& prompt, size_t reuse);
  std::shared_ptr<const Model> model_;
  std::unique_ptr<Context> ctx_;
  std::vector<int32_t> history_;
};

}  // namespace smoe
