#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/error.h"
#include "engine/logprobs.h"
#include "engine/sampler.h"
#include "engine/stop_matcher.h"
#include "smoe/generate.h"

namespace smoe {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

Session::Session(std::shared_ptr<const Model> model, const ContextOptions& opts)
    : model_(std::move(model)), ctx_(std::make_unique<Context>(model_, opts)) {}
Session::~Session() = default;

void Session::reset() {
  ctx_->clear(0);
  history_.clear();
}

// Feeds the prompt after the `reuse` tokens already in the cache; returns the logits of its last
// token.
const float* Session::prefill(const std::vector<int32_t>& prompt, size_t reuse) {
  std::vector<BatchToken> batch;
  for (size_t i = reuse; i < prompt.size(); ++i)
    batch.push_back({prompt[i], static_cast<int64_t>(i), 0, i + 1 == prompt.size()});
  const float* lg = ctx_->decode(batch);
  history_ = prompt;
  return lg;
}

GenerateStats Session::generate(const std::vector<int32_t>& prompt, const GenerateParams& params,
                                const std::function<bool(const TokenEvent&)>& on_token) {
  if (prompt.empty()) fail("the prompt is empty: give at least one token (e.g. BOS)");
  if (static_cast<int64_t>(prompt.size()) >= ctx_->n_ctx())
    fail("the prompt has {} tokens but the context holds {}: shorten it or raise --ctx-size",
         prompt.size(), ctx_->n_ctx());
  // Reuse the longest common prefix with what is cached (keeping one token to recompute logits).
  size_t reuse = 0;
  while (reuse < history_.size() && reuse + 1 < prompt.size() && history_[reuse] == prompt[reuse])
    ++reuse;
  try {
    ctx_->truncate(0, static_cast<int64_t>(reuse));
  } catch (const Error&) {
    reuse = 0;
    ctx_->clear(0);
  }
  if (reuse == 0) ctx_->clear(0);

  auto tok = model_->tokenizer();
  std::unique_ptr<StreamDecoder> dec;
  if (tok) dec = std::make_unique<StreamDecoder>(tok);
  std::string prompt_text;
  if (dec)
    for (int32_t id : prompt) prompt_text += dec->push(id);
  if (params.echo_prompt && !on_token(TokenEvent{-1, prompt_text, 0.0f, nullptr}))
    return GenerateStats{0, 0, 0, 0, 0, "cancelled"};

  GenerateStats st;
  const auto t0 = Clock::now();
  const float* lg = prefill(prompt, reuse);
  st.n_prompt = static_cast<int64_t>(prompt.size() - reuse);
  st.prompt_seconds = seconds_since(t0);

  Sampler sampler(params.sampling, ctx_->n_vocab());
  StopMatcher stops(params.stop);
  std::vector<TokenLogprob> top;
  const int64_t vocab = ctx_->n_vocab();
  const auto t1 = Clock::now();
  st.stop_reason = "length";
  const int64_t limit = params.n_predict < 0 ? INT64_MAX : params.n_predict;
  for (int64_t n = 0; n < limit; ++n) {
    if (static_cast<int64_t>(history_.size()) >= ctx_->n_ctx()) {
      st.stop_reason = "context full";
      break;
    }
    const int32_t id = sampler.sample(lg, history_);
    const float lp = token_logprobs(lg, vocab, id, params.logprobs, top);
    if (n == 0) st.first_token_seconds = st.prompt_seconds + seconds_since(t1);
    const bool eos = params.stop_at_eos && tok && id == tok->eos_id();
    std::string text;
    if (!eos && dec) text = stops.push(dec->push(id));
    if (eos) st.stop_reason = "eos";
    ++st.n_generated;
    if (!on_token(TokenEvent{id, text, lp, params.logprobs > 0 ? &top : nullptr})) {
      st.stop_reason = "cancelled";
      break;
    }
    if (eos) break;
    if (stops.stopped()) {
      st.stop_reason = "stop string";
      break;
    }
    std::vector<BatchToken> b{{id, static_cast<int64_t>(history_.size()), 0, true}};
    history_.push_back(id);
    lg = ctx_->decode(b);
  }
  if (!stops.stopped()) {
    std::string rest = dec ? stops.push(dec->flush()) + stops.flush() : std::string();
    if (!rest.empty()) on_token(TokenEvent{-1, rest, 0.0f, nullptr});
  }
  st.gen_seconds = seconds_since(t1);
  return st;
}

}  // namespace smoe
