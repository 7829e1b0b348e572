#include "engine/logprobs.h"

#include <algorithm>
#include <cmath>

namespace smoe {

float token_logprobs(const float* logits, int64_t n_vocab, int32_t chosen, int top_n,
                     std::vector<TokenLogprob>& top) {
  float mx = logits[0];
  for (int64_t i = 1; i < n_vocab; ++i) mx = std::max(mx, logits[i]);
  double sum = 0;
  for (int64_t i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(logits[i] - mx));
  const float lse = mx + static_cast<float>(std::log(sum));
  top.clear();
  if (top_n > 0) {
    for (int64_t i = 0; i < n_vocab; ++i) {
      const TokenLogprob t{static_cast<int32_t>(i), logits[i] - lse};
      if (static_cast<int>(top.size()) < top_n || t.logprob > top.back().logprob) {
        if (static_cast<int>(top.size()) == top_n) top.pop_back();
        top.insert(std::upper_bound(top.begin(), top.end(), t,
                                    [](const TokenLogprob& a, const TokenLogprob& b) {
                                      return a.logprob > b.logprob;
                                    }),
                   t);
      }
    }
  }
  return logits[chosen] - lse;
}

double log_softmax_at(const float* logits, int64_t n_vocab, int32_t tok) {
  const float mx = *std::max_element(logits, logits + n_vocab);
  double sum = 0;
  for (int64_t v = 0; v < n_vocab; ++v) sum += std::exp(static_cast<double>(logits[v] - mx));
  return logits[tok] - mx - std::log(sum);
}

}  // namespace smoe
