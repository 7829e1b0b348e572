// Passkey retrieval over a long context (the other measurements of the paper: cmd_perplexity.cpp,
// cmd_routing.cpp).
#include <cmath>
#include <cstdio>
#include <random>

#include "commands.h"
#include "common.h"
#include "smoe/analysis.h"
#include "smoe/tokenizer.h"

namespace smoe::app {
namespace {

struct PasskeyFlags {
  ModelFlags model;
  ContextFlags ctx;
  int64_t length = 0;  // prompt tokens; 0: the model's context less the answer
  int trials = 5;
  uint64_t seed = 1;
};

// The prompt of one trial, exactly `length` tokens: BOS, the intro, filler up to the depth
// (a fraction of the filler), the key's sentence, filler again, the question. The pieces are
// tokenized apart and joined as ids, so that the length is exact; the filler's last repetition
// is cut to fit.
std::vector<int32_t> passkey_prompt(const Tokenizer& tok, int64_t length, double depth,
                                    const std::string& key) {
  const auto ids = [&](const std::string& text) { return tok.encode(text, {.add_bos = false}); };
  const std::vector<int32_t> intro =
      ids("There is an important info hidden inside a lot of irrelevant text. Find it and memorize "
          "it. I will quiz you about the important information there.\n");
  const std::vector<int32_t> filler =
      ids("The grass is green. The sky is blue. The sun is yellow. Here we go. There and back "
          "again.\n");
  const std::vector<int32_t> needle =
      ids("The pass key is " + key + ". Remember it. " + key + " is the pass key.\n");
  const std::vector<int32_t> question = ids("What is the pass key? The pass key is");
  std::vector<int32_t> out;
  if (tok.bos_id() >= 0) out.push_back(tok.bos_id());
  const int64_t fixed =
      static_cast<int64_t>(out.size() + intro.size() + needle.size() + question.size());
  const int64_t fill = length - fixed;
  if (fill < 0)
    throw UsageError("--length " + std::to_string(length) + " is shorter than the " +
                     std::to_string(fixed) + " tokens of the prompt without filler");
  const int64_t before = std::llround(depth * static_cast<double>(fill));
  const auto add_filler = [&](int64_t n) {
    for (int64_t i = 0; i < n; ++i) out.push_back(filler[static_cast<size_t>(i) % filler.size()]);
  };
  out.insert(out.end(), intro.begin(), intro.end());
  add_filler(before);
  out.insert(out.end(), needle.begin(), needle.end());
  add_filler(fill - before);
  out.insert(out.end(), question.begin(), question.end());
  return out;
}

// The usual passkey test: a number hidden at some depth of repetitive filler, asked for at the
// end; trials at depths spread evenly from the start (0%) to the end (100%) of the filler.
int run_passkey(const PasskeyFlags& f) {
  auto model = Model::load(f.model.options());
  auto tok = model->tokenizer();
  if (!tok) throw std::runtime_error("the model carries no tokenizer: give one with --tokenizer");
  const int64_t answer = 8;
  const int64_t length = f.length > 0 ? f.length : model->info().max_context - answer;
  ContextOptions co = f.ctx.options;
  co.n_ctx = length + answer;
  if (co.n_ctx > model->info().max_context)
    throw UsageError("--length " + std::to_string(length) + " and " + std::to_string(answer) +
                     " answer tokens exceed the model's context of " +
                     std::to_string(model->info().max_context));
  Session session(model, co);
  std::mt19937_64 rng(f.seed);
  int found = 0;
  double seconds = 0;
  for (int t = 0; t < f.trials; ++t) {
    const std::string key = std::to_string(10000 + rng() % 90000);
    const double depth = f.trials > 1 ? static_cast<double>(t) / (f.trials - 1) : 0.5;
    const std::vector<int32_t> ids = passkey_prompt(*tok, length, depth, key);
    GenerateParams gp;
    gp.n_predict = static_cast<int>(answer);
    gp.sampling.temperature = 0;
    std::string text;
    session.reset();
    const GenerateStats st = session.generate(ids, gp, [&](const TokenEvent& e) {
      text += e.text;
      return true;
    });
    const bool ok = text.find(key) != std::string::npos;
    found += ok;
    seconds += st.prompt_seconds + st.gen_seconds;
    std::printf(
        "trial %d: %zu tokens, key at depth %3.0f%%: %s (answer:%s), %.1f s, pre-fill %.1f "
        "tok/s\n",
        t + 1, ids.size(), 100.0 * depth, ok ? "found" : "missed", text.c_str(),
        st.prompt_seconds + st.gen_seconds, st.prompt_tps());
    std::fflush(stdout);
  }
  std::printf("passkey retrieval: %d/%d at %lld tokens, %.1f s per trial, peak memory %s\n", found,
              f.trials, static_cast<long long>(length), seconds / f.trials,
              human_bytes(peak_rss_bytes()).c_str());
  return 0;
}

}  // namespace

void add_passkey_command(CLI::App& app, Runner& run) {
  auto f = std::make_shared<PasskeyFlags>();
  auto* pk = app.add_subcommand("passkey", "Passkey retrieval over a long context");
  f->model.add(pk);
  f->ctx.add(pk);
  pk->add_option("--length", f->length,
                 "prompt length in tokens, exactly (default: the model's whole context)")
      ->check(is_number())
      ->check(CLI::Range(int64_t{16}, int64_t{1} << 24));
  pk->add_option("--trials", f->trials, "trials at evenly spread depths")
      ->check(is_number())
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  pk->add_option("--seed", f->seed, "seed of the pass keys")->capture_default_str();
  pk->callback([&run, f] { run = [f] { return run_passkey(*f); }; });
}

}  // namespace smoe::app
