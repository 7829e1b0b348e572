// The routing analysis of the Mixtral paper as a page and as JSON: Figure 7 (per layer, the share
// of each domain's tokens whose first choice is each expert, the uniform share marked), Table 5
// (per layer, how often consecutive tokens keep their first-choice expert, and how often the
// second token's first choice is among the first token's choices, beside random routing) and
// Figure 8 (each text with its tokens coloured by their first-choice expert at chosen layers).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "smoe/analysis.h"

namespace smoe::app {

struct RoutingDomain {
  std::string name;                 // "arxiv", "code", ...
  RoutingStats stats;               // first_choices: one row per RoutingReport::token_layers
  std::vector<std::string> pieces;  // the text of the tokens in first_choices, as decoded
};

struct RoutingReport {
  std::string model;  // what was measured (the model's path)
  int64_t n_experts = 0, n_layers = 0, top_k = 0;
  std::vector<int> token_layers;  // the layers of Figure 8
  std::vector<RoutingDomain> domains;
};

// The raw counts (and Figure 8's tokens) of every domain.
nlohmann::json routing_json(const RoutingReport& r);

// A self-contained HTML page (inline SVG and CSS, no scripts, nothing fetched). Every bar and
// table cell carries its value in a data- attribute, so that a test can set it beside the JSON.
std::string routing_html(const RoutingReport& r);

}  // namespace smoe::app
