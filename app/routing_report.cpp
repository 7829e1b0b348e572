#include "routing_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <string_view>

namespace smoe::app {
namespace {

// Colours that stay apart on screen and in print: one per domain (Figure 7), one per expert
// (Figure 8); past the list, hues go round the wheel.
constexpr std::string_view kPalette[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1",
                                         "#76b7b2", "#edc948", "#ff9da7", "#9c755f", "#bab0ac"};

std::string colour(size_t i) {
  if (i < std::size(kPalette)) return std::string(kPalette[i]);
  return fmt::format("hsl({},60%,60%)", (i * 137) % 360);
}

// The same colour, light enough for black text on it (Figure 8).
std::string tint(size_t i) {
  if (i < std::size(kPalette)) return std::string(kPalette[i]) + "99";
  return fmt::format("hsla({},60%,60%,0.6)", (i * 137) % 360);
}

std::string escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

double share(int64_t part, int64_t whole) {
  return whole > 0 ? static_cast<double>(part) / static_cast<double>(whole) : 0.0;
}

constexpr const char* kStyle = R"(<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px}
.legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:12px;
height:12px;margin-right:4px;vertical-align:-1px}
.panels{display:flex;flex-wrap:wrap;gap:12px}.panel{border:1px solid #ddd;padding:4px}
.panel text{font-size:10px;fill:#444}table{border-collapse:collapse;margin-top:8px}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}
.tokens{font:13px/1.9 ui-monospace,monospace;white-space:pre-wrap;border:1px solid #ddd;
padding:8px;margin:6px 0 16px}.tokens span{border-radius:2px}
</style>)";

// Figure 7: one panel per layer, a group of bars per expert, one bar per domain.
std::string figure7(const RoutingReport& r) {
  const int bar = 9, gap = 8, height = 110, top = 16, bottom = 18;
  const size_t nd = r.domains.size();
  const int group = static_cast<int>(nd) * bar + gap;
  const int width = static_cast<int>(r.n_experts) * group + 30;
  double peak = 1.0 / static_cast<double>(r.n_experts);
  for (const RoutingDomain& d : r.domains)
    for (const LayerRouting& l : d.stats.layers)
      for (int64_t c : l.first_choice) peak = std::max(peak, share(c, d.stats.n_tokens));
  const double scale = height / std::min(1.0, peak * 1.1);
  std::string out = "<div class=\"panels\">";
  for (int64_t layer = 0; layer < r.n_layers; ++layer) {
    out += fmt::format(
        "<svg class=\"panel\" width=\"{}\" height=\"{}\" data-layer=\"{}\">"
        "<text x=\"4\" y=\"11\">layer {}</text>",
        width, top + height + bottom, layer, layer);
    for (int64_t e = 0; e < r.n_experts; ++e) {
      for (size_t d = 0; d < nd; ++d) {
        const RoutingDomain& dom = r.domains[d];
        const double s = share(dom.stats.layers[layer].first_choice[e], dom.stats.n_tokens);
        const double h = s * scale;
        out += fmt::format(
            "<rect class=\"bar\" x=\"{}\" y=\"{:.2f}\" width=\"{}\" height=\"{:.2f}\" fill=\"{}\" "
            "data-layer=\"{}\" data-domain=\"{}\" data-expert=\"{}\" data-share=\"{:.6f}\">"
            "<title>{}, expert {}: {:.1f}%</title></rect>",
            26 + e * group + static_cast<int>(d) * bar, top + height - h, bar - 1, h, colour(d),
            layer, escape(dom.name), e, s, escape(dom.name), e, 100 * s);
      }
      out += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>", 26 + e * group + 2, top + height + 13,
                         e);
    }
    const double uy = top + height - scale / static_cast<double>(r.n_experts);
    out += fmt::format(
        "<line class=\"uniform\" x1=\"24\" x2=\"{}\" y1=\"{:.2f}\" y2=\"{:.2f}\" stroke=\"#000\" "
        "stroke-dasharray=\"4 3\"/><text x=\"0\" y=\"{:.2f}\">{:.0f}%</text></svg>",
        width, uy, uy, uy + 3, 100.0 / static_cast<double>(r.n_experts));
  }
  return out + "</div>";
}

// Table 5: per layer and domain, consecutive tokens keeping their expert.
std::string table5(const RoutingReport& r) {
  std::string out = "<table id=\"table5\"><tr><th rowspan=\"2\">layer</th>";
  for (const RoutingDomain& d : r.domains)
    out += fmt::format("<th colspan=\"2\">{}</th>", escape(d.name));
  out += "<th colspan=\"2\">random routing</th></tr><tr>";
  for (size_t i = 0; i <= r.domains.size(); ++i)
    out += "<th>first choice</th><th>first or second</th>";
  out += "</tr>";
  const double n = static_cast<double>(r.n_experts), k = static_cast<double>(r.top_k);
  for (int64_t layer = 0; layer < r.n_layers; ++layer) {
    out += fmt::format("<tr><th>{}</th>", layer);
    for (const RoutingDomain& d : r.domains) {
      const LayerRouting& l = d.stats.layers[layer];
      const double a = share(l.same_first, l.pairs), b = share(l.same_any, l.pairs);
      out += fmt::format(
          "<td data-layer=\"{}\" data-domain=\"{}\" data-kind=\"first\" data-value=\"{:.6f}\">"
          "{:.1f}%</td><td data-layer=\"{}\" data-domain=\"{}\" data-kind=\"any\" "
          "data-value=\"{:.6f}\">{:.1f}%</td>",
          layer, escape(d.name), a, 100 * a, layer, escape(d.name), b, 100 * b);
    }
    out += fmt::format("<td>{:.1f}%</td><td>{:.1f}%</td></tr>", 100 / n, 100 * k / n);
  }
  return out + "</table>";
}

// Figure 8: each text's first tokens coloured by their first-choice expert, per chosen layer.
std::string figure8(const RoutingReport& r) {
  std::string out = "<p class=\"legend\">";
  for (int64_t e = 0; e < r.n_experts; ++e)
    out += fmt::format("<span><i style=\"background:{}\"></i>expert {}</span>", tint(e), e);
  out += "</p>";
  for (const RoutingDomain& d : r.domains)
    for (size_t i = 0; i < r.token_layers.size(); ++i) {
      out += fmt::format(
          "<h3>{}, layer {}</h3><div class=\"tokens\" data-domain=\"{}\" "
          "data-layer=\"{}\">",
          escape(d.name), r.token_layers[i], escape(d.name), r.token_layers[i]);
      const std::vector<int8_t>& c = d.stats.first_choices[i];
      for (size_t t = 0; t < c.size() && t < d.pieces.size(); ++t)
        out += fmt::format("<span style=\"background:{}\" data-expert=\"{}\">{}</span>",
                           tint(static_cast<size_t>(c[t])), c[t], escape(d.pieces[t]));
      out += "</div>";
    }
  return out;
}

}  // namespace

nlohmann::json routing_json(const RoutingReport& r) {
  nlohmann::json domains = nlohmann::json::array();
  for (const RoutingDomain& d : r.domains) {
    nlohmann::json layers = nlohmann::json::array();
    for (const LayerRouting& l : d.stats.layers)
      layers.push_back({{"first_choice", l.first_choice},
                        {"any_choice", l.any_choice},
                        {"pairs", l.pairs},
                        {"same_first", l.same_first},
                        {"same_any", l.same_any}});
    domains.push_back({{"name", d.name},
                       {"n_tokens", d.stats.n_tokens},
                       {"layers", layers},
                       {"tokens", {{"text", d.pieces}, {"first_choice", d.stats.first_choices}}}});
  }
  return {{"model", r.model}, {"n_experts", r.n_experts},       {"n_layers", r.n_layers},
          {"top_k", r.top_k}, {"token_layers", r.token_layers}, {"domains", domains}};
}

std::string routing_html(const RoutingReport& r) {
  std::string out =
      "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Expert routing</title>";
  out += kStyle;
  out += fmt::format(
      "</head><body><h1>Expert routing of {}</h1><p>{} experts, {} per token, {} "
      "layers. Texts:",
      escape(r.model), r.n_experts, r.top_k, r.n_layers);
  for (const RoutingDomain& d : r.domains)
    out += fmt::format(" <b>{}</b> ({} tokens)", escape(d.name), d.stats.n_tokens);
  out += ".</p><p class=\"legend\">";
  for (size_t d = 0; d < r.domains.size(); ++d)
    out += fmt::format("<span><i style=\"background:{}\"></i>{}</span>", colour(d),
                       escape(r.domains[d].name));
  out += "</p>";
  out +=
      "<h2 id=\"figure7\">Share of tokens whose first choice is each expert (the paper's "
      "Figure 7); dashed: every expert alike</h2>";
  out += figure7(r);
  out +=
      "<h2 id=\"table5\">Consecutive tokens routed to the same expert (the paper's Table 5): "
      "the second token's first choice equals the first token's first choice, or is among its "
      "choices</h2>";
  out += table5(r);
  out +=
      "<h2 id=\"figure8\">Tokens coloured by their first-choice expert (the paper's "
      "Figure 8)</h2>";
  out += figure8(r);
  return out + "</body></html>\n";
}

}  // namespace smoe::app
