// The paper's measurements as commands: perplexity, routing statistics, passkey retrieval.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>

#include "commands.h"
#include "common.h"
#include "smoe/analysis.h"

namespace smoe::app {
namespace {

struct AnalyzeFlags {
  ModelFlags model;
  ContextFlags ctx;
  std::string file;
  int64_t chunk = 512;
  bool json = false;
  int64_t length = 1000;  // passkey: approximate prompt length in tokens
  int trials = 5;
  uint64_t seed = 1;
};

std::vector<int32_t> text_tokens(const Model& m, const std::string& file) {
  auto tok = m.tokenizer();
  if (!tok) throw std::runtime_error("the model carries no tokenizer: give one with --tokenizer");
  const std::string text = read_text_file(file);
  if (text.empty()) throw UsageError("'" + file + "' is empty: there is no text to measure");
  return tok->encode(text, {});
}

int run_perplexity(const AnalyzeFlags& f) {
  auto model = Model::load(f.model.options());
  const auto tokens = text_tokens(*model, f.file);
  ContextOptions co = f.ctx.options;
  co.n_ctx = std::max<int64_t>(co.n_ctx, f.chunk);
  Context ctx(model, co);
  const PerplexityResult r = perplexity(ctx, tokens, f.chunk);
  std::printf("perplexity: %.4f (mean NLL %.4f nats over %lld tokens in %lld chunks of %lld)\n",
              r.perplexity, r.nll, static_cast<long long>(r.n_scored),
              static_cast<long long>(r.n_chunks), static_cast<long long>(f.chunk));
  return 0;
}

int run_routing(const AnalyzeFlags& f) {
  auto model = Model::load(f.model.options());
  const auto tokens = text_tokens(*model, f.file);
  ContextOptions co = f.ctx.options;
  co.n_ctx = static_cast<int64_t>(tokens.size());
  Context ctx(model, co);
  const RoutingStats st = routing_stats(ctx, *model, tokens);
  if (st.layers.empty()) {
    std::printf("dense model: no routing\n");
    return 0;
  }
  if (f.json) {
    nlohmann::json layers = nlohmann::json::array();
    for (const LayerRouting& l : st.layers)
      layers.push_back({{"first_choice", l.first_choice},
                        {"any_choice", l.any_choice},
                        {"pairs", l.pairs},
                        {"same_first", l.same_first},
                        {"same_any", l.same_any}});
    std::printf("%s\n",
                nlohmann::json{{"n_tokens", st.n_tokens}, {"layers", layers}}.dump(2).c_str());
    return 0;
  }
  const size_t ne = st.layers[0].first_choice.size();
  std::printf(
      "%lld tokens. Share of tokens whose first choice is each expert, and how often\n"
      "consecutive tokens keep the same first-choice expert (random: %.1f%%):\n\n",
      static_cast<long long>(st.n_tokens), 100.0 / static_cast<double>(ne));
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
  return 0;
}

// The usual passkey test: a number hidden at some depth of repetitive filler, asked for at the end.
int run_passkey(const AnalyzeFlags& f) {
  auto model = Model::load(f.model.options());
  auto tok = model->tokenizer();
  if (!tok) throw std::runtime_error("the model carries no tokenizer: give one with --tokenizer");
  const std::string intro =
      "There is an important info hidden inside a lot of irrelevant text. Find it and memorize "
      "it. I will quiz you about the important information there.\n";
  const std::string filler =
      "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back "
      "again.\n";
  const int64_t filler_tokens =
      static_cast<int64_t>(tok->encode(filler, {.add_bos = false}).size());
  const int64_t n_fill = std::max<int64_t>(1, f.length / std::max<int64_t>(1, filler_tokens));
  std::mt19937_64 rng(f.seed);
  ContextOptions co = f.ctx.options;
  co.n_ctx = f.length + 256;
  Session session(model, co);
  int found = 0;
  for (int t = 0; t < f.trials; ++t) {
    const std::string key = std::to_string(10000 + rng() % 90000);
    const int64_t depth = f.trials > 1 ? n_fill * t / (f.trials - 1) : n_fill / 2;
    std::string prompt = intro;
    for (int64_t i = 0; i < n_fill; ++i) {
      if (i == depth)
        prompt += "The pass key is " + key + ". Remember it. " + key + " is the pass key.\n";
      prompt += filler;
    }
    if (depth >= n_fill)
      prompt += "The pass key is " + key + ". Remember it. " + key + " is the pass key.\n";
    prompt += "What is the pass key? The pass key is";
    const auto ids = tok->encode(prompt, {});
    GenerateParams gp;
    gp.n_predict = 8;
    gp.sampling.temperature = 0;
    std::string answer;
    session.reset();
    session.generate(ids, gp, [&](const TokenEvent& e) {
      answer += e.text;
      return true;
    });
    const bool ok = answer.find(key) != std::string::npos;
    found += ok;
    std::printf("trial %d: %lld tokens, key at depth %3.0f%%: %s (answer:%s)\n", t + 1,
                static_cast<long long>(ids.size()), 100.0 * depth / n_fill, ok ? "found" : "missed",
                answer.c_str());
  }
  std::printf("passkey retrieval: %d/%d\n", found, f.trials);
  return 0;
}

}  // namespace

void add_analysis_commands(CLI::App& app, Runner& run) {
  auto f = std::make_shared<AnalyzeFlags>();
  auto* ppl = app.add_subcommand("perplexity", "Perplexity of a model on a text file");
  f->model.add(ppl);
  f->ctx.add(ppl);
  ppl->add_option("-f,--file", f->file, "text file")->required();
  ppl->add_option("--chunk", f->chunk, "tokens per evaluated chunk")
      ->check(is_number())
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 20))
      ->capture_default_str();
  ppl->callback([&run, f] { run = [f] { return run_perplexity(*f); }; });

  auto* rt = app.add_subcommand("routing", "Expert routing statistics of an MoE model on a text");
  f->model.add(rt);
  f->ctx.add(rt);
  rt->add_option("-f,--file", f->file, "text file")->required();
  rt->add_flag("--json", f->json, "print the raw counts as JSON");
  rt->callback([&run, f] { run = [f] { return run_routing(*f); }; });

  auto* pk = app.add_subcommand("passkey", "Passkey retrieval over a long context");
  f->model.add(pk);
  f->ctx.add(pk);
  pk->add_option("--length", f->length, "prompt length in tokens (approximately)")
      ->check(is_number())
      ->check(CLI::Range(int64_t{16}, int64_t{1} << 20))
      ->capture_default_str();
  pk->add_option("--trials", f->trials, "trials at evenly spread depths")
      ->check(is_number())
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  pk->add_option("--seed", f->seed, "seed of the pass keys")->capture_default_str();
  pk->callback([&run, f] { run = [f] { return run_passkey(*f); }; });
}

}  // namespace smoe::app
