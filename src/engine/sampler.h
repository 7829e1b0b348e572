// The sampler: a chain of small stages over a candidate list, each unit-tested on its own.
// Allocation happens once (the candidate buffer is sized to the vocabulary).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "smoe/generate.h"

namespace smoe {

struct Candidate {
  int32_t id;
  float logit;
  float p;  // probability after softmax stages
};

// The stages. Each keeps `c` sorted by logit descending once sorted (top_k sorts).
namespace sampling {
// Penalties from the recent tokens (repeat, frequency, presence), applied to logits.
void apply_penalties(std::vector<Candidate>& c, const std::vector<int32_t>& recent,
                     const SamplingParams& p);
// Keeps the k best (sorted descending, ties by lower id).
void top_k(std::vector<Candidate>& c, int k);
// Softmax of logit / temperature into p.
void softmax(std::vector<Candidate>& c, float temperature);
// Keeps the smallest prefix whose probability reaches top_p (at least one); renormalises.
void top_p(std::vector<Candidate>& c, float top_p);
// Drops candidates whose p < min_p · p_max; renormalises.
void min_p(std::vector<Candidate>& c, float min_p);
// Index of the highest logit (lowest id on ties).
int32_t argmax(const float* logits, int64_t n);
}  // namespace sampling

class Sampler {
 public:
  Sampler(const SamplingParams& p, int64_t n_vocab);
  // Chooses the next token from `logits` given the tokens so far.
  int32_t sample(const float* logits, const std::vector<int32_t>& history);

 private:
  SamplingParams p_;
  int64_t n_vocab_;
  std::vector<Candidate> cand_;
  std::vector<int32_t> recent_;
  std::mt19937_64 rng_;
};

}  // namespace smoe
