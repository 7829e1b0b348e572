// `smoe perplexity`: perplexity of a text as llama-perplexity measures it, and the KL divergence of
// a model from a base model's saved log-probabilities (--kl-divergence-base, --kl-divergence),
// printed as llama-perplexity prints them so that the numbers compare with published ones.
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "common.h"
#include "smoe/analysis.h"

namespace smoe::app {
namespace {

struct PerplexityFlags {
  ModelFlags model;
  ContextFlags ctx;
  std::string file, base;
  int64_t chunks = 0;
  bool all_tokens = false, kl = false, json = false;
};

// BOS first in every chunk where the model's prompts start with it (llama-perplexity's rule).
int32_t chunk_bos(const Model& m) {
  auto tok = m.tokenizer();
  return tok && tok->add_bos_by_default() ? tok->bos_id() : -1;
}

nlohmann::json estimate(const Estimate& e) {
  return {{"value", e.value}, {"error", e.error}};
}

void print_kl_summary(const KlStats& s) {
  std::printf("\n====== Perplexity statistics ======\n");
  std::printf("Mean PPL(Q)                   : %10.6f ± %10.6f\n", s.ppl.value, s.ppl.error);
  std::printf("Mean PPL(base)                : %10.6f ± %10.6f\n", s.ppl_base.value,
              s.ppl_base.error);
  std::printf("Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n", 100.0 * s.log_ppl_correlation);
  std::printf("Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f\n", s.log_ppl_ratio.value,
              s.log_ppl_ratio.error);
  std::printf("Mean PPL(Q)/PPL(base)         : %10.6f ± %10.6f\n", s.ppl_ratio.value,
              s.ppl_ratio.error);
  std::printf("Mean PPL(Q)-PPL(base)         : %10.6f ± %10.6f\n", s.ppl_diff.value,
              s.ppl_diff.error);
  const auto& k = s.kld_values;
  std::printf("\n====== KL divergence statistics ======\n");
  std::printf("Mean    KLD: %10.6f ± %10.6f\n", s.kld.value, s.kld.error);
  const std::pair<const char*, double> kl_rows[] = {
      {"Maximum", 1.0}, {"99.9%  ", 0.999}, {"99.0%  ", 0.99}, {"Median ", 0.5},
      {"10.0%  ", 0.1}, {" 5.0%  ", 0.05},  {" 1.0%  ", 0.01}, {"Minimum", 0.0}};
  for (const auto& [name, f] : kl_rows) std::printf("%s KLD: %10.6f\n", name, percentile(k, f));
  std::printf("\n====== Token probability statistics ======\n");
  std::printf("Mean    Δp: %6.3f ± %5.3f %%\n", 100 * s.p_diff.value, 100 * s.p_diff.error);
  const std::pair<const char*, double> p_rows[] = {
      {"Maximum", 1.0}, {"99.9%  ", 0.999}, {"99.0%  ", 0.99}, {"95.0%  ", 0.95},
      {"90.0%  ", 0.9}, {"75.0%  ", 0.75},  {"Median ", 0.5},  {"25.0%  ", 0.25},
      {"10.0%  ", 0.1}, {" 5.0%  ", 0.05},  {" 1.0%  ", 0.01}, {" 0.1%  ", 0.001},
      {"Minimum", 0.0}};
  for (const auto& [name, f] : p_rows)
    std::printf("%s Δp: %6.3f%%\n", name, 100 * percentile(s.p_diff_values, f));
  std::printf("RMS Δp    : %6.3f ± %5.3f %%\n", 100 * s.rms_p_diff.value, 100 * s.rms_p_diff.error);
  std::printf("Same top p: %6.3f ± %5.3f %%\n", 100 * s.same_top.value, 100 * s.same_top.error);
}

int run_kl_divergence(const PerplexityFlags& f, std::shared_ptr<Model> model) {
  if (f.base.empty())
    throw UsageError(
        "--kl-divergence reads the base's log-probabilities: give --kl-divergence-base");
  ContextOptions co = f.ctx.options;
  co.n_ctx = std::max(co.n_ctx, kl_base_info(f.base).n_ctx);  // the base's chunks must fit
  Context ctx(model, co);
  KlOptions o{.base = f.base, .max_chunks = f.chunks, .bos = chunk_bos(*model)};
  if (!f.json)
    std::printf(
        "chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence  "
        "            Δp RMS            Same top p\n");
  const auto row = [&](const KlStats& s) {
    if (f.json) return;
    std::printf(
        "%4lld    %9.4f ± %9.4f    %10.5f ± %10.5f    %10.5f ± %10.5f    %6.3f ± %6.3f %%"
        "    %6.3f ± %6.3f %%\n",
        static_cast<long long>(s.n_chunks), s.ppl.value, s.ppl.error, s.log_ppl_ratio.value,
        s.log_ppl_ratio.error, s.kld.value, s.kld.error, 100 * s.rms_p_diff.value,
        100 * s.rms_p_diff.error, 100 * s.same_top.value, 100 * s.same_top.error);
    std::fflush(stdout);
  };
  const KlStats s = kl_divergence(ctx, o, row);
  if (f.json) {
    nlohmann::json kld_pct, pd_pct;
    for (double p : {0.0, 0.01, 0.05, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0}) {
      kld_pct[std::to_string(p)] = percentile(s.kld_values, p);
      pd_pct[std::to_string(p)] = percentile(s.p_diff_values, p);
    }
    std::printf("%s\n", nlohmann::json{{"count", s.count},
                                       {"n_chunks", s.n_chunks},
                                       {"ppl", estimate(s.ppl)},
                                       {"ppl_base", estimate(s.ppl_base)},
                                       {"log_ppl_correlation", s.log_ppl_correlation},
                                       {"log_ppl_ratio", estimate(s.log_ppl_ratio)},
                                       {"ppl_ratio", estimate(s.ppl_ratio)},
                                       {"ppl_diff", estimate(s.ppl_diff)},
                                       {"kld", estimate(s.kld)},
                                       {"kld_percentiles", kld_pct},
                                       {"p_diff", estimate(s.p_diff)},
                                       {"p_diff_percentiles", pd_pct},
                                       {"rms_p_diff", estimate(s.rms_p_diff)},
                                       {"same_top", estimate(s.same_top)}}
                            .dump(2)
                            .c_str());
    return 0;
  }
  print_kl_summary(s);
  return 0;
}

int run_perplexity(const PerplexityFlags& f) {
  if (f.kl && f.all_tokens) throw UsageError("--all-tokens does not go with --kl-divergence");
  if (!f.kl && f.file.empty()) throw UsageError("--file is required (the text to measure)");
  auto model = Model::load(f.model.options());
  if (f.kl) return run_kl_divergence(f, model);
  auto tokens = text_file_tokens(*model, f.file);
  Context ctx(model, f.ctx.options);
  PerplexityOptions o;
  o.n_ctx = f.ctx.options.n_ctx;
  o.max_chunks = f.chunks;
  o.all_tokens = f.all_tokens;
  o.bos = f.all_tokens ? -1 : chunk_bos(*model);
  o.save_base = f.base;
  if (!f.json) {
    std::printf("perplexity of %zu tokens in chunks of %lld, scoring %s\n", tokens.size(),
                static_cast<long long>(o.n_ctx),
                f.all_tokens ? "every token after each chunk's first"
                             : "the second half of each chunk (as llama-perplexity)");
    o.on_chunk = [](int64_t i, double ppl) {
      std::printf("[%lld]%.4f,", static_cast<long long>(i), ppl);
      std::fflush(stdout);
    };
  }
  const PerplexityResult r = perplexity(ctx, std::move(tokens), o);
  if (f.json) {
    std::printf("%s\n", nlohmann::json{{"perplexity", r.perplexity},
                                       {"error", r.error},
                                       {"nll", r.nll},
                                       {"n_scored", r.n_scored},
                                       {"n_chunks", r.n_chunks},
                                       {"n_ctx", o.n_ctx}}
                            .dump(2)
                            .c_str());
    return 0;
  }
  std::printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", r.perplexity, r.error);
  if (!f.base.empty())
    std::printf("saved the log-probabilities of %lld tokens to %s\n",
                static_cast<long long>(r.n_scored), f.base.c_str());
  return 0;
}

}  // namespace

void add_perplexity_command(CLI::App& app, Runner& run) {
  auto f = std::make_shared<PerplexityFlags>();
  f->ctx.options.n_ctx = 512;  // llama-perplexity's chunk
  auto* cmd = app.add_subcommand(
      "perplexity",
      "Perplexity of a model on a text, as llama-perplexity computes it; or its KL divergence "
      "from a base model");
  f->model.add(cmd);
  f->ctx.add(cmd);  // -c: tokens per chunk
  cmd->add_option("-f,--file", f->file, "the text");
  cmd->add_option("--chunks", f->chunks, "at most this many chunks (default: all)")
      ->check(is_number())
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  cmd->add_flag("--all-tokens", f->all_tokens,
                "score every token after the first of each chunk (not only the second half)");
  cmd->add_option("--kl-divergence-base", f->base,
                  "file of the base model's log-probabilities: written while measuring "
                  "perplexity, read with --kl-divergence");
  cmd->add_flag("--kl-divergence", f->kl,
                "measure the model against the base file's log-probabilities (on its tokens)");
  cmd->add_flag("--json", f->json, "print the results as JSON");
  cmd->callback([&run, f] { run = [f] { return run_perplexity(*f); }; });
}

}  // namespace smoe::app
