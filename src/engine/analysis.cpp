#include "smoe/analysis.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace smoe {

PerplexityResult perplexity(Context& ctx, const std::vector<int32_t>& tokens, int64_t chunk) {
  if (chunk < 2) fail("perplexity needs chunks of at least 2 tokens, got {}", chunk);
  chunk = std::min(chunk, ctx.n_ctx());
  if (static_cast<int64_t>(tokens.size()) < 2) fail("perplexity needs at least 2 tokens");
  PerplexityResult r;
  double total = 0;
  const int64_t vocab = ctx.n_vocab();
  std::vector<BatchToken> batch;
  for (size_t b = 0; b + 1 < tokens.size(); b += static_cast<size_t>(chunk)) {
    const int64_t len = std::min<int64_t>(chunk, static_cast<int64_t>(tokens.size() - b));
    if (len < 2) break;
    ctx.clear(0);
    batch.clear();
    for (int64_t i = 0; i < len; ++i) batch.push_back({tokens[b + i], i, 0, i + 1 < len});
    const float* lg = ctx.decode(batch);
    for (int64_t i = 0; i + 1 < len; ++i) {
      const float* row = lg + i * vocab;
      const float mx = *std::max_element(row, row + vocab);
      double sum = 0;
      for (int64_t v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(row[v] - mx));
      total += std::log(sum) + mx - row[tokens[b + i + 1]];
      ++r.n_scored;
    }
    ++r.n_chunks;
  }
  r.nll = total / static_cast<double>(r.n_scored);
  r.perplexity = std::exp(r.nll);
  return r;
}

RoutingStats routing_stats(Context& ctx, const Model& model, const std::vector<int32_t>& tokens) {
  const ModelInfo& info = model.info();
  RoutingStats st;
  if (info.n_experts == 0) return st;
  if (static_cast<int64_t>(tokens.size()) > ctx.n_ctx())
    fail("{} tokens do not fit the context of {}: raise --ctx-size or shorten the text",
         tokens.size(), ctx.n_ctx());
  st.layers.resize(static_cast<size_t>(info.n_layers));
  for (LayerRouting& l : st.layers) {
    l.first_choice.assign(static_cast<size_t>(info.n_experts), 0);
    l.any_choice.assign(static_cast<size_t>(info.n_experts), 0);
  }
  const int k = static_cast<int>(info.n_experts_used);
  // choices[layer][token * k + j]
  std::vector<std::vector<int32_t>> choices(st.layers.size(),
                                            std::vector<int32_t>(tokens.size() * k, -1));
  ctx.set_routing_callback([&](const RoutingEvent& e) {
    std::copy(e.experts, e.experts + e.k, choices[e.layer].begin() + e.batch_index * k);
  });
  ctx.clear(0);
  std::vector<BatchToken> batch;
  for (size_t i = 0; i < tokens.size(); ++i)
    batch.push_back({tokens[i], static_cast<int64_t>(i), 0, false});
  ctx.decode(batch);
  ctx.set_routing_callback(nullptr);
  st.n_tokens = static_cast<int64_t>(tokens.size());
  for (size_t l = 0; l < st.layers.size(); ++l) {
    LayerRouting& lr = st.layers[l];
    const std::vector<int32_t>& c = choices[l];
    for (size_t t = 0; t < tokens.size(); ++t) {
      ++lr.first_choice[c[t * k]];
      for (int j = 0; j < k; ++j) ++lr.any_choice[c[t * k + j]];
      if (t == 0) continue;
      ++lr.pairs;
      lr.same_first += c[t * k] == c[(t - 1) * k];
      lr.same_any += std::find(&c[(t - 1) * k], &c[t * k], c[t * k]) != &c[t * k];
    }
  }
  return st;
}

}  // namespace smoe
