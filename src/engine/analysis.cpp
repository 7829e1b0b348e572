#include "smoe/analysis.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace smoe {

namespace {

// One chunk's expert choices into the statistics: c[token · k + j] for the chunk's tokens.
void count_chunk(LayerRouting& lr, const std::vector<int32_t>& c, int64_t n, int k) {
  for (int64_t t = 0; t < n; ++t) {
    ++lr.first_choice[c[t * k]];
    for (int j = 0; j < k; ++j) ++lr.any_choice[c[t * k + j]];
    if (t == 0) continue;
    ++lr.pairs;
    lr.same_first += c[t * k] == c[(t - 1) * k];
    const int32_t* prev = &c[(t - 1) * k];
    lr.same_any += std::find(prev, prev + k, c[t * k]) != prev + k;
  }
}

}  // namespace

RoutingStats routing_stats(Context& ctx, const Model& model, const std::vector<int32_t>& tokens,
                           const RoutingOptions& o) {
  const ModelInfo& info = model.info();
  RoutingStats st;
  if (info.n_experts == 0) return st;
  const int64_t chunk = std::min(o.chunk, ctx.n_ctx());
  if (chunk < 1) fail("routing needs chunks of at least 1 token, got {}", o.chunk);
  for (int l : o.token_layers)
    if (l < 0 || l >= info.n_layers)
      fail("layer {} does not exist: the model has layers 0 to {}", l, info.n_layers - 1);
  st.layers.resize(static_cast<size_t>(info.n_layers));
  for (LayerRouting& l : st.layers) {
    l.first_choice.assign(static_cast<size_t>(info.n_experts), 0);
    l.any_choice.assign(static_cast<size_t>(info.n_experts), 0);
  }
  const int k = static_cast<int>(info.n_experts_used);
  const int64_t kept = std::min<int64_t>(o.max_tokens_kept, static_cast<int64_t>(tokens.size()));
  st.first_choices.assign(o.token_layers.size(), std::vector<int8_t>(static_cast<size_t>(kept)));
  // choices[layer][token · k + j] of the chunk being run
  std::vector<std::vector<int32_t>> choices(st.layers.size(),
                                            std::vector<int32_t>(static_cast<size_t>(chunk * k)));
  ctx.set_routing_callback([&](const RoutingEvent& e) {
    std::copy(e.experts, e.experts + e.k, choices[e.layer].begin() + e.batch_index * k);
  });
  std::vector<BatchToken> batch;
  for (size_t b = 0; b < tokens.size(); b += static_cast<size_t>(chunk)) {
    const int64_t n = std::min<int64_t>(chunk, static_cast<int64_t>(tokens.size() - b));
    batch.clear();
    for (int64_t i = 0; i < n; ++i) batch.push_back({tokens[b + i], i, 0, false});
    ctx.clear(0);
    ctx.decode(batch);
    for (size_t l = 0; l < st.layers.size(); ++l) count_chunk(st.layers[l], choices[l], n, k);
    for (size_t i = 0; i < o.token_layers.size(); ++i)
      for (int64_t t = 0; t < n && static_cast<int64_t>(b) + t < kept; ++t)
        st.first_choices[i][b + t] = static_cast<int8_t>(choices[o.token_layers[i]][t * k]);
  }
  ctx.set_routing_callback(nullptr);
  st.n_tokens = static_cast<int64_t>(tokens.size());
  return st;
}

}  // namespace smoe
