#include "engine/sequence.h"

#include "engine/logprobs.h"

namespace smoe {
namespace {

SamplingParams with_seed_offset(SamplingParams p, int choice) {
  p.seed += static_cast<uint64_t>(choice);
  return p;
}

}  // namespace

Sequence::Sequence(const Request& req, uint64_t request_id, int choice_index, int64_t n_vocab,
                   std::shared_ptr<const Tokenizer> tok)
    : request(request_id),
      choice(choice_index),
      tokens(req.prompt),
      n_prompt(static_cast<int64_t>(req.prompt.size())),
      req_(req),
      n_vocab_(n_vocab),
      tok_(std::move(tok)),
      sampler_(with_seed_offset(req.params.sampling, choice_index), n_vocab),
      stops_(req.params.stop) {
  if (tok_) dec_ = std::make_unique<StreamDecoder>(tok_);
}

RequestEvent Sequence::base() const {
  RequestEvent e;
  e.request = request;
  e.choice = choice;
  e.prompt_tokens = n_prompt;
  e.cached_tokens = cached_at_start < 0 ? 0 : cached_at_start;
  e.generated_tokens = generated;
  return e;
}

bool Sequence::accept(const float* logits, int64_t n_ctx, RequestEvent& token, RequestEvent& end) {
  const GenerateParams& p = req_.params;
  const int64_t limit = p.n_predict < 0 ? INT64_MAX : p.n_predict;
  token = base();
  token.token.id = -1;
  if (generated >= limit) {  // nothing (more) to generate
    end = finish("length");
    return true;
  }
  const int32_t id = sampler_.sample(logits, tokens);
  const bool want_lp = req_.want_logprobs || p.logprobs > 0;
  const float lp = want_lp ? token_logprobs(logits, n_vocab_, id, p.logprobs, top_) : 0.0f;
  const bool eos = p.stop_at_eos && tok_ && id == tok_->eos_id();
  text_.clear();
  if (!eos && dec_) text_ = stops_.push(dec_->push(id));
  tokens.push_back(id);
  ++generated;
  token = base();
  token.token = TokenEvent{id, text_, lp, p.logprobs > 0 ? &top_ : nullptr};
  std::string reason;
  if (eos || stops_.stopped())
    reason = "stop";
  else if (generated >= limit || static_cast<int64_t>(tokens.size()) >= n_ctx)
    reason = "length";
  if (reason.empty()) return false;
  end = finish(reason);
  return true;
}

RequestEvent Sequence::finish(const std::string& reason) {
  finished = true;
  rest_.clear();
  // Text held back (a possible stop string, half a character) is released unless a stop string
  // ended the choice or it was cut off.
  if (!stops_.stopped() && (reason == "length" || reason == "stop") && dec_)
    rest_ = stops_.push(dec_->flush()) + stops_.flush();
  RequestEvent e = base();
  e.token = TokenEvent{-1, rest_, 0.0f, nullptr};
  e.finished = true;
  e.finish_reason = reason;
  return e;
}

}  // namespace smoe
