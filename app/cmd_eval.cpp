// `smoe eval`: multiple-choice accuracy (HellaSwag, WinoGrande, or any JSON-lines set) with the
// scoring rules llama-perplexity's users know (choice_formats.h). Each task's shared context is
// computed once and its choices as one batch (smoe/analysis.h score_choices).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "choice_formats.h"
#include "commands.h"
#include "common.h"
#include "smoe/analysis.h"

namespace smoe::app {
namespace {

struct EvalFlags {
  ModelFlags model;
  ContextFlags ctx;
  std::string file, format = "auto";
  int64_t tasks = 0;
  bool json = false, quiet = false;
};

int run_eval(const EvalFlags& f) {
  auto model = Model::load(f.model.options());
  auto tok = model->tokenizer();
  if (!tok) throw std::runtime_error("the model carries no tokenizer: give one with --tokenizer");
  const ChoiceFormat format = choice_format(f.format, f.file);
  std::vector<ChoiceTask> tasks = read_choice_tasks(f.file, format, *tok);
  if (f.tasks > 0 && static_cast<int64_t>(tasks.size()) > f.tasks)
    tasks.resize(static_cast<size_t>(f.tasks));
  size_t most = 2;
  for (const ChoiceTask& t : tasks) most = std::max(most, t.choices.size());
  ContextOptions co = f.ctx.options;
  co.max_seqs = static_cast<int>(most);
  Context ctx(model, co);
  const auto start = std::chrono::steady_clock::now();
  int64_t right = 0;
  nlohmann::json rows = nlohmann::json::array();
  if (!f.json && !f.quiet) std::printf("task\tacc\n");
  for (size_t i = 0; i < tasks.size(); ++i) {
    const ChoiceResult r = score_choices(ctx, tasks[i]);
    right += r.chosen == tasks[i].answer;
    if (f.json)
      rows.push_back({{"scores", r.scores}, {"chosen", r.chosen}, {"answer", tasks[i].answer}});
    else if (!f.quiet)
      std::printf("%zu\t%.8f\n", i + 1, 100.0 * static_cast<double>(right) / (i + 1.0));
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double n = static_cast<double>(tasks.size()), p = static_cast<double>(right) / n;
  const double err = tasks.size() > 1 ? std::sqrt(p * (1 - p) / (n - 1)) : 0.0;
  if (f.json) {
    std::printf("%s\n", nlohmann::json{{"format", choice_format_name(format)},
                                       {"tasks", tasks.size()},
                                       {"correct", right},
                                       {"accuracy", p},
                                       {"error", err},
                                       {"tasks_per_second", n / secs},
                                       {"results", rows}}
                            .dump(1)
                            .c_str());
    return 0;
  }
  std::printf("\nFinal %s score (%zu tasks): %.4f +/- %.4f\n", choice_format_name(format),
              tasks.size(), 100 * p, 100 * err);
  std::printf("%.1f tasks/s (%.1f s)\n", n / secs, secs);
  return 0;
}

}  // namespace

void add_eval_command(CLI::App& app, Runner& run) {
  auto f = std::make_shared<EvalFlags>();
  f->ctx.options.n_ctx = 2048;
  auto* cmd = app.add_subcommand(
      "eval",
      "Multiple-choice accuracy: HellaSwag, WinoGrande, llama.cpp's binary or JSON-lines tasks");
  f->model.add(cmd);
  f->ctx.add(cmd);
  cmd->add_option("-f,--file", f->file, "the tasks")->required();
  cmd->add_option("--format", f->format,
                  "hellaswag (6 lines a task), winogrande (CSV), mc (llama.cpp's binary "
                  "multiple-choice file), jsonl ({context, choices, answer} a line), or auto: "
                  "from the file's name")
      ->check(CLI::IsMember({"auto", "hellaswag", "winogrande", "mc", "jsonl"}))
      ->capture_default_str();
  cmd->add_option("--tasks", f->tasks, "the first N tasks only")
      ->check(is_number())
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  cmd->add_flag("--json", f->json, "print every task's scores and the accuracy as JSON");
  cmd->add_flag("-q,--quiet", f->quiet, "print only the final score");
  cmd->callback([&run, f] { run = [f] { return run_eval(*f); }; });
}

}  // namespace smoe::app
