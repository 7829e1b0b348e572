// The measurements of the Mixtral paper, as tools: perplexity over long texts, routing
// statistics (expert load per layer, how often consecutive tokens keep their expert), and
// passkey retrieval.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "smoe/engine.h"

namespace smoe {

// Perplexity as llama-perplexity computes it, by default: the tokens (the text's, BOS first) cut
// into n = tokens / n_ctx whole chunks; each chunk evaluated from an empty cache with its first
// token replaced by BOS (where the model adds one); the logits at positions n_ctx/2 .. n_ctx − 2
// score the tokens after them, so that every scored token has at least n_ctx/2 before it. With
// all_tokens, every token after the first of each chunk is scored instead (the last chunk may be
// short) and no token is replaced.
struct PerplexityOptions {
  int64_t n_ctx = 512;      // tokens per chunk (at most the context's)
  int64_t max_chunks = 0;   // 0: every chunk
  bool all_tokens = false;  // score every token after each chunk's first
  int32_t bos = -1;         // each chunk's first token becomes this one; -1: kept
  // Also write the scored tokens' log-probabilities to this file, the base of a later
  // kl_divergence (the format of llama-perplexity's --kl-divergence-base). Not with all_tokens.
  std::string save_base;
  // After each chunk: chunks done, the running perplexity.
  std::function<void(int64_t, double)> on_chunk;
};

struct PerplexityResult {
  double nll = 0;         // mean negative log-likelihood (nats) of the scored tokens
  double perplexity = 0;  // exp(nll)
  double error = 0;       // its standard error: perplexity · sd(nll) / sqrt(n_scored − 1)
  int64_t n_scored = 0;
  int64_t n_chunks = 0;
};

// Throws smoe::Error when the text is too short for one chunk (llama-perplexity's rule: at least
// 2·n_ctx tokens).
PerplexityResult perplexity(Context& ctx, std::vector<int32_t> tokens,
                            const PerplexityOptions& opts);

// A model against a base model's log-probabilities (written by perplexity's save_base), on the
// tokens stored with them: llama-perplexity's --kl-divergence measurement.
struct KlOptions {
  std::string base;        // the base file
  int64_t max_chunks = 0;  // 0: every chunk of the file
  int32_t bos = -1;        // as PerplexityOptions::bos (the same as when the base was written)
};

// A value and its standard error.
struct Estimate {
  double value = 0, error = 0;
};

struct KlStats {
  int64_t count = 0;  // tokens scored
  int64_t n_chunks = 0;
  Estimate ppl, ppl_base;                       // perplexity of the model and of the base
  double log_ppl_correlation = 0;               // of the two models' per-token log-likelihoods
  Estimate log_ppl_ratio, ppl_ratio, ppl_diff;  // ln(PPL/PPL_base), PPL/PPL_base, PPL − PPL_base
  Estimate kld;                      // mean KL divergence of the model from the base, nats
  Estimate p_diff, rms_p_diff;       // p(token) − p_base(token): mean, root mean square
  Estimate same_top;                 // share of tokens whose most likely next token is the base's
  std::vector<float> kld_values;     // per token, sorted (only in kl_divergence's result)
  std::vector<float> p_diff_values;  // per token, sorted
};

// What a base file holds: its chunk length (the context kl_divergence needs), vocabulary, chunks.
struct KlBaseInfo {
  int64_t n_ctx = 0, n_vocab = 0, n_chunk = 0;
};
KlBaseInfo kl_base_info(const std::string& path);

// The percentile (0 .. 1, interpolated) of sorted values, as llama-perplexity reports them.
double percentile(const std::vector<float>& sorted, double fraction);

// on_chunk (optional) gets the running statistics after each chunk (no per-token values).
KlStats kl_divergence(Context& ctx, const KlOptions& opts,
                      const std::function<void(const KlStats&)>& on_chunk = nullptr);

// One multiple-choice task: each choice as the whole token sequence the model reads (context
// and ending), and the tokens of it that are scored. A choice's score is the mean log-probability
// of its scored tokens; the answer is the choice with the highest score (the first on a tie).
struct ChoiceTask {
  std::vector<std::vector<int32_t>> choices;
  std::vector<std::pair<int64_t, int64_t>> scored;  // per choice, [from, to) of its tokens
  int answer = 0;                                   // the right choice
};

struct ChoiceResult {
  std::vector<double> scores;
  int chosen = 0;
};

// Evaluates the tokens all choices share once (sequence 0) and the rest of every choice as one
// batch, choice i in sequence i with the shared part's keys and values (Context::fork). Needs
// ContextOptions::max_seqs ≥ the number of choices and scored ranges after the first token.
ChoiceResult score_choices(Context& ctx, const ChoiceTask& task);

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
  // For each layer of RoutingOptions::token_layers, the first-choice expert of each of the first
  // max_tokens_kept tokens (the paper's Figure 8).
  std::vector<std::vector<int8_t>> first_choices;
};

struct RoutingOptions {
  int64_t chunk = 512;            // tokens per evaluation, each from an empty cache
  std::vector<int> token_layers;  // layers whose per-token first choices are kept
  int64_t max_tokens_kept = 0;
};

// Runs `tokens` through sequence 0 in chunks (each from a clean cache) and collects routing
// statistics; consecutive pairs are counted within a chunk. Dense models have no routing: the
// result then has no layers.
RoutingStats routing_stats(Context& ctx, const Model& model, const std::vector<int32_t>& tokens,
                           const RoutingOptions& opts = {});

}  // namespace smoe
