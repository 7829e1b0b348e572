// `smoe routing`: which experts a MoE model picks for texts of several domains, as the Mixtral
// paper's routing analysis shows it (routing_report.h): a table on the terminal, the raw counts
// as JSON, the figures as a page.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "commands.h"
#include "common.h"
#include "routing_report.h"
#include "smoe/analysis.h"
#include "smoe/tokenizer.h"

namespace smoe::app {
namespace {

struct RoutingFlags {
  ModelFlags model;
  ContextFlags ctx;
  std::vector<std::string> files;  // "name=path" or "path"
  std::vector<int> layers;         // Figure 8's (default: first, middle, last)
  int64_t shown = 400;             // Figure 8's tokens per text
  std::string html;
  bool json = false;
};

// "name=path" → (name, path); a path that exists as given, or has no '=', is named by its file.
std::pair<std::string, std::string> domain_of(const std::string& arg) {
  const size_t eq = arg.find('=');
  if (eq == std::string::npos || std::filesystem::exists(arg))
    return {std::filesystem::path(arg).filename().string(), arg};
  if (eq == 0 || eq + 1 == arg.size())
    throw UsageError("-f '" + arg + "': give NAME=FILE (or a file)");
  return {arg.substr(0, eq), arg.substr(eq + 1)};
}

// The text of each token on its own, whole UTF-8 characters only (a character split over tokens
// goes with its last token).
std::vector<std::string> token_texts(std::shared_ptr<const Tokenizer> tok,
                                     const std::vector<int32_t>& ids, size_t n) {
  StreamDecoder dec(std::move(tok));
  std::vector<std::string> out;
  for (size_t i = 0; i < std::min(n, ids.size()); ++i) out.push_back(dec.push(ids[i]));
  return out;
}

void print_table(const RoutingDomain& d) {
  const RoutingStats& st = d.stats;
  const size_t ne = st.layers[0].first_choice.size();
  std::printf(
      "%s: %lld tokens. Share of tokens whose first choice is each expert, and how often\n"
      "consecutive tokens keep the same first-choice expert (random: %.1f%%):\n\n",
      d.name.c_str(), static_cast<long long>(st.n_tokens), 100.0 / static_cast<double>(ne));
  std::printf("layer ");
  for (size_t e = 0; e < ne; ++e) std::printf("  e%-4zu", e);
  std::printf("  same-1st  same-any\n");
  for (size_t l = 0; l < st.layers.size(); ++l) {
    const LayerRouting& lr = st.layers[l];
    std::printf("%5zu ", l);
    for (size_t e = 0; e < ne; ++e)
      std::printf(" %5.1f%%", 100.0 * lr.first_choice[e] / static_cast<double>(st.n_tokens));
    std::printf("   %6.1f%%   %6.1f%%\n", 100.0 * lr.same_first / std::max<int64_t>(1, lr.pairs),
                100.0 * lr.same_any / std::max<int64_t>(1, lr.pairs));
  }
  std::printf("\n");
}

int run_routing(const RoutingFlags& f) {
  std::vector<std::pair<std::string, std::string>> domains;
  for (const std::string& a : f.files) domains.push_back(domain_of(a));
  auto model = Model::load(f.model.options());
  const ModelInfo& info = model->info();
  if (info.n_experts == 0) {
    std::printf("dense model: no routing\n");
    return 0;
  }
  RoutingReport r{.model = info.path,
                  .n_experts = info.n_experts,
                  .n_layers = info.n_layers,
                  .top_k = info.n_experts_used,
                  .token_layers = f.layers,
                  .domains = {}};
  if (r.token_layers.empty()) {
    for (int64_t l : {int64_t{0}, info.n_layers / 2, info.n_layers - 1})
      if (std::find(r.token_layers.begin(), r.token_layers.end(), l) == r.token_layers.end())
        r.token_layers.push_back(static_cast<int>(l));
  }
  Context ctx(model, f.ctx.options);
  const RoutingOptions o{
      .chunk = f.ctx.options.n_ctx, .token_layers = r.token_layers, .max_tokens_kept = f.shown};
  for (const auto& [name, path] : domains) {
    const std::vector<int32_t> tokens = text_file_tokens(*model, path);
    RoutingDomain d{.name = name, .stats = routing_stats(ctx, *model, tokens, o), .pieces = {}};
    d.pieces = token_texts(model->tokenizer(), tokens, static_cast<size_t>(f.shown));
    r.domains.push_back(std::move(d));
  }
  if (!f.html.empty()) {
    std::ofstream out(f.html, std::ios::binary | std::ios::trunc);
    out << routing_html(r);
    if (!out.flush()) throw std::runtime_error("cannot write '" + f.html + "'");
  }
  if (f.json) {
    std::printf("%s\n", routing_json(r).dump(2).c_str());
    return 0;
  }
  for (const RoutingDomain& d : r.domains) print_table(d);
  if (!f.html.empty()) std::printf("wrote the routing figures to %s\n", f.html.c_str());
  return 0;
}

}  // namespace

void add_routing_command(CLI::App& app, Runner& run) {
  auto f = std::make_shared<RoutingFlags>();
  f->ctx.options.n_ctx = 512;  // tokens per evaluated chunk
  auto* cmd = app.add_subcommand(
      "routing",
      "Which experts an MoE model picks for texts of several domains (the paper's "
      "routing analysis)");
  f->model.add(cmd);
  f->ctx.add(cmd);  // -c: tokens per chunk
  cmd->add_option("-f,--file", f->files,
                  "a text, as NAME=FILE (repeat for each domain: -f arxiv=a.txt -f code=b.py)")
      ->required();
  cmd->add_option("--layers", f->layers,
                  "layers whose tokens are coloured by expert (default: first, middle, last)")
      ->delimiter(',');
  cmd->add_option("--tokens", f->shown, "tokens of each text coloured by expert")
      ->check(is_number())
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("--html", f->html, "write the figures to this page (self-contained HTML)");
  cmd->add_flag("--json", f->json, "print the raw counts as JSON");
  cmd->callback([&run, f] { run = [f] { return run_routing(*f); }; });
}

}  // namespace smoe::app
