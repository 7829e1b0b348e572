#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace smoe {
namespace sampling {

void apply_penalties(std::vector<Candidate>& c, const std::vector<int32_t>& recent,
                     const SamplingParams& p) {
  if (recent.empty() ||
      (p.repeat_penalty == 1.0f && p.frequency_penalty == 0.0f && p.presence_penalty == 0.0f))
    return;
  std::unordered_map<int32_t, int> counts;
  for (int32_t id : recent) ++counts[id];
  for (Candidate& x : c) {
    auto it = counts.find(x.id);
    if (it == counts.end()) continue;
    if (p.repeat_penalty != 1.0f)
      x.logit = x.logit > 0 ? x.logit / p.repeat_penalty : x.logit * p.repeat_penalty;
    x.logit -= static_cast<float>(it->second) * p.frequency_penalty + p.presence_penalty;
  }
}

static bool better(const Candidate& a, const Candidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

void top_k(std::vector<Candidate>& c, int k) {
  if (k <= 0 || k >= static_cast<int>(c.size())) {
    std::sort(c.begin(), c.end(), better);
    return;
  }
  std::partial_sort(c.begin(), c.begin() + k, c.end(), better);
  c.resize(static_cast<size_t>(k));
}

void softmax(std::vector<Candidate>& c, float temperature) {
  float mx = c[0].logit;
  for (const Candidate& x : c) mx = std::max(mx, x.logit);
  double sum = 0;
  for (Candidate& x : c) {
    x.p = std::exp((x.logit - mx) / temperature);
    sum += x.p;
  }
  for (Candidate& x : c) x.p = static_cast<float>(x.p / sum);
}

static void renormalise(std::vector<Candidate>& c) {
  double sum = 0;
  for (const Candidate& x : c) sum += x.p;
  for (Candidate& x : c) x.p = static_cast<float>(x.p / sum);
}

void top_p(std::vector<Candidate>& c, float top_p) {
  if (top_p >= 1.0f) return;
  double cum = 0;
  size_t keep = c.size();
  for (size_t i = 0; i < c.size(); ++i) {
    cum += c[i].p;
    if (cum >= top_p) {
      keep = i + 1;
      break;
    }
  }
  c.resize(keep);
  renormalise(c);
}

void min_p(std::vector<Candidate>& c, float min_p) {
  if (min_p <= 0.0f) return;
  float pmax = 0;
  for (const Candidate& x : c) pmax = std::max(pmax, x.p);
  const float cut = min_p * pmax;
  c.erase(std::remove_if(c.begin(), c.end(), [&](const Candidate& x) { return x.p < cut; }),
          c.end());
  renormalise(c);
}

int32_t argmax(const float* logits, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (logits[i] > logits[best]) best = i;
  return static_cast<int32_t>(best);
}

}  // namespace sampling

Sampler::Sampler(const SamplingParams& p, int64_t n_vocab)
    : p_(p), n_vocab_(n_vocab), rng_(p.seed) {
  cand_.reserve(static_cast<size_t>(n_vocab));
}

int32_t Sampler::sample(const float* logits, const std::vector<int32_t>& history) {
  const bool penalties =
      p_.repeat_penalty != 1.0f || p_.frequency_penalty != 0.0f || p_.presence_penalty != 0.0f;
  if (p_.temperature <= 0.0f && !penalties && p_.logit_bias.empty())
    return sampling::argmax(logits, n_vocab_);
  cand_.clear();
  for (int64_t i = 0; i < n_vocab_; ++i) cand_.push_back({static_cast<int32_t>(i), logits[i], 0});
  for (const auto& [id, bias] : p_.logit_bias)
    if (id >= 0 && id < n_vocab_) cand_[static_cast<size_t>(id)].logit += bias;
  if (penalties) {
    const size_t n =
        p_.repeat_last_n < 0 ? history.size() : std::min(history.size(), size_t(p_.repeat_last_n));
    recent_.assign(history.end() - static_cast<std::ptrdiff_t>(n), history.end());
    sampling::apply_penalties(cand_, recent_, p_);
  }
  if (p_.temperature <= 0.0f) {
    sampling::top_k(cand_, 1);
    return cand_[0].id;
  }
  sampling::top_k(cand_, p_.top_k);
  sampling::softmax(cand_, p_.temperature);
  sampling::top_p(cand_, p_.top_p);
  sampling::min_p(cand_, p_.min_p);
  // Draw with a 53-bit uniform so the result depends only on the seed.
  const double u = static_cast<double>(rng_() >> 11) * (1.0 / 9007199254740992.0);
  double cum = 0;
  for (const Candidate& x : cand_) {
    cum += x.p;
    if (u < cum) return x.id;
  }
  return cand_.back().id;
}

}  // namespace smoe
