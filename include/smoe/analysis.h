// The measurements of the Mixtral paper, as tools: perplexity over long texts, routing
// statistics (expert load per layer, how often consecutive tokens keep their expert), and
// passkey retrieval.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "smoe/engine.h"

namespace smoe {

struct PerplexityResult {
  double nll = 0;         // mean negative log-likelihood (nats) of the scored tokens
  double perplexity = 0;  // exp(nll)
  int64_t n_scored = 0;
  int64_t n_chunks = 0;
};

// Splits `tokens` into chunks of `chunk` tokens (at most the context), evaluates each from a
// clean cache and scores every token after the first of its chunk.
PerplexityResult perplexity(Context& ctx, const std::vector<int32_t>& tokens, int64_t chunk);

struct LayerRouting {
  std::vector<int64_t> first_choice;  // (n_experts) tokens whose top-1 expert is e
  std::vector<int64_t> any_choice;    // (n_experts) tokens routed to e in any of the k slots
  int64_t pairs = 0;                  // consecutive token pairs seen
  int64_t same_first = 0;             // pairs whose top-1 expert is the same
  int64_t same_any = 0;               // pairs whose top-1 expert of the second is among the
                                      // first's choices (the paper's "first or second choice")
};

struct RoutingStats {
  int64_t n_tokens = 0;
  std::vector<LayerRouting> layers;
};

// Runs `tokens` through sequence 0 (from a clean cache) and collects routing statistics.
// Dense models have no routing: the result then has no layers.
RoutingStats routing_stats(Context& ctx, const Model& model, const std::vector<int32_t>& tokens);

}  // namespace smoe
