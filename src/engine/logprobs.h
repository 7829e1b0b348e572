// Log-probabilities of sampled tokens, as the API reports them.
#pragma once

#include <cstdint>
#include <vector>

#include "smoe/generate.h"

namespace smoe {

// log-softmax of `chosen` over the n_vocab logits; fills `top` with the top_n most likely tokens
// (best first) when top_n > 0.
float token_logprobs(const float* logits, int64_t n_vocab, int32_t chosen, int top_n,
                     std::vector<TokenLogprob>& top);

// log softmax(logits)[tok] over n_vocab logits, the exponentials summed in double (as
// llama-perplexity sums them), for perplexity and multiple-choice scores.
double log_softmax_at(const float* logits, int64_t n_vocab, int32_t tok);

}  // namespace smoe
