// Multiple-choice scoring (smoe/analysis.h): the shared context once, the endings as one batch.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "engine/logprobs.h"
#include "smoe/analysis.h"

namespace smoe {
namespace {

// Tokens every choice starts with, leaving each at least one token of its own.
int64_t shared_prefix(const ChoiceTask& t) {
  int64_t n = static_cast<int64_t>(t.choices[0].size());
  for (const auto& c : t.choices) {
    n = std::min<int64_t>(n, static_cast<int64_t>(c.size()) - 1);
    int64_t i = 0;
    while (i < n && c[i] == t.choices[0][i]) ++i;
    n = i;
  }
  return n;
}

void check_task(const ChoiceTask& t, int64_t n_ctx) {
  const size_t n = t.choices.size();
  if (n < 2 || t.scored.size() != n)
    fail("a multiple-choice task needs 2 or more choices, each with its scored range");
  if (t.answer < 0 || t.answer >= static_cast<int>(n))
    fail("a task of {} choices gives answer {}", n, t.answer);
  for (size_t i = 0; i < n; ++i) {
    const auto [from, to] = t.scored[i];
    if (from < 1 || from >= to || to > static_cast<int64_t>(t.choices[i].size()))
      fail("choice {} of {} tokens scores tokens {} to {}", i, t.choices[i].size(), from, to);
    if (static_cast<int64_t>(t.choices[i].size()) > n_ctx)
      fail("choice {} has {} tokens, more than the context of {}", i, t.choices[i].size(), n_ctx);
  }
}

}  // namespace

ChoiceResult score_choices(Context& ctx, const ChoiceTask& t) {
  const int n = static_cast<int>(t.choices.size());
  check_task(t, ctx.n_ctx());
  const int64_t vocab = ctx.n_vocab();
  int64_t shared = shared_prefix(t);  // and no further than the first scored token
  for (const auto& [from, to] : t.scored) shared = std::min(shared, from);
  for (int s = 0; s < n; ++s) ctx.clear(s);
  // The shared tokens; the logits of the last one score every choice's first own token.
  std::vector<BatchToken> batch;
  for (int64_t i = 0; i < shared; ++i) batch.push_back({t.choices[0][i], i, 0, i + 1 == shared});
  std::vector<float> last;
  if (shared > 0) {
    const float* lg = ctx.decode(batch);
    last.assign(lg, lg + vocab);
    for (int s = 1; s < n; ++s) ctx.fork(0, s);
  }
  // Every choice's own tokens, logits for all but the last.
  batch.clear();
  std::vector<int64_t> row_of(static_cast<size_t>(n));  // first logits row of each choice
  int64_t rows = 0;
  for (int s = 0; s < n; ++s) {
    const auto& c = t.choices[s];
    row_of[s] = rows;
    for (int64_t i = shared; i < static_cast<int64_t>(c.size()); ++i) {
      const bool out = i + 1 < static_cast<int64_t>(c.size());
      batch.push_back({c[i], i, s, out});
      rows += out;
    }
  }
  const float* lg = ctx.decode(batch);
  ChoiceResult r;
  for (int s = 0; s < n; ++s) {
    const auto& c = t.choices[s];
    const auto [from, to] = t.scored[s];
    double sum = 0;
    for (int64_t i = from; i < to; ++i) {  // token i from the logits at position i − 1
      const float* row = i == shared ? last.data() : lg + (row_of[s] + i - 1 - shared) * vocab;
      sum += log_softmax_at(row, vocab, c[i]);
    }
    r.scores.push_back(sum / static_cast<double>(to - from));
    if (r.scores[s] > r.scores[r.chosen]) r.chosen = s;
  }
  return r;
}

}  // namespace smoe
