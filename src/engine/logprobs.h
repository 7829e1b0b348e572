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

}  // namespace smoe
