// smoe run: generate a continuation of a prompt and stream it to stdout.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "common.h"
#include "log.h"
#include "smoe/chat.h"

namespace smoe::app {
namespace {

struct RunFlags {
  ModelFlags model;
  ContextFlags ctx;
  SamplingFlags sampling;
  std::string prompt;
  bool prompt_given = false;  // -p, even empty
  std::string prompt_file;
  std::string prompts_file;
  bool no_bos = false;
  bool chat = false;
  std::string system;
  bool quiet = false;
};

// One process, many prompts: one JSON object per prompt on stdout.
int run_prompts_file(RunFlags& f, std::shared_ptr<Model> model, const Tokenizer& tok) {
  Session session(model, f.ctx.options);
  const std::string all = read_text_file(f.prompts_file);
  size_t start = 0;
  while (start < all.size()) {
    size_t end = all.find('\n', start);
    if (end == std::string::npos) end = all.size();
    const std::string prompt = all.substr(start, end - start);
    start = end + 1;
    if (prompt.empty()) continue;
    std::string text;
    session.generate(tok.encode(prompt, {.add_bos = !f.no_bos && tok.add_bos_by_default()}),
                     f.sampling.params, [&](const TokenEvent& e) {
                       text += e.text;
                       return true;
                     });
    std::printf("%s\n", nlohmann::json{{"prompt", prompt}, {"text", text}}.dump().c_str());
  }
  return 0;
}

// Text read from standard input, without the line ends a pipe or a terminal leaves at its end.
std::string stdin_text() {
  std::string text = read_text_file("-");
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

// The prompt: -p (never empty), -f FILE ("-" reads standard input), or text piped in; with none
// of them, the demo model's example problem, and for any other model an error.
std::string prompt_of(const RunFlags& f, bool demo) {
  if (f.prompt_given) {
    if (f.prompt.empty()) throw UsageError("the prompt is empty (-p \"\")");
    return f.prompt;
  }
  if (f.prompt_file == "-") {
    std::string text = stdin_text();
    if (text.empty()) throw UsageError("-f -: there is no prompt on standard input");
    return text;
  }
  if (!f.prompt_file.empty()) {
    std::string text = read_text_file(f.prompt_file);
    if (text.empty()) throw UsageError("the prompt file '" + f.prompt_file + "' is empty");
    return text;
  }
  if (!isatty(STDIN_FILENO)) {
    std::string text = stdin_text();
    if (!text.empty()) return text;
  }
  if (demo) return "417+86=";
  throw UsageError("no prompt: give -p TEXT, -f FILE (- for standard input), or pipe it in");
}

int run_run(RunFlags& f) {
  const bool demo = f.model.model.empty();
  if (f.prompts_file.empty()) f.prompt = prompt_of(f, demo);
  if (demo) {
    f.model.model = demo_model_path();
    if (!f.quiet)
      std::fprintf(
          stderr,
          "smoe: no model given: using the built-in demo model %s (a tiny "
          "Mixtral-style MoE that adds numbers and sorts digits; try -p \"sort 3 1 2=\")\n",
          f.model.model.c_str());
  }
  auto model = Model::load(f.model.options());
  auto tok = model->tokenizer();
  if (!tok)
    throw std::runtime_error("the model '" + f.model.model +
                             "' carries no tokenizer: give one with --tokenizer FILE");
  if (!f.prompts_file.empty()) return run_prompts_file(f, model, *tok);
  EncodeOptions eo;
  eo.add_bos = !f.no_bos && tok->add_bos_by_default();
  std::vector<ChatMessage> msgs;
  if (!f.system.empty()) msgs.push_back({"system", f.system});
  msgs.push_back({"user", f.prompt});
  const ChatTemplate tmpl = chat_template_for(model->info().chat_template, *tok);
  if (f.chat && !f.quiet && tmpl.format != ChatFormat::MistralInstruct)
    std::fprintf(stderr, "smoe: --chat: turns as %s (%s)\n", chat_format_name(tmpl.format),
                 tmpl.why.c_str());
  const std::vector<int32_t> prompt =
      f.chat ? encode_chat(*tok, msgs, tmpl.format) : tok->encode(f.prompt, eo);
  Session session(model, f.ctx.options);
  log_model(*model, session.context());
  f.sampling.params.echo_prompt = !f.chat;
  const GenerateStats st = session.generate(prompt, f.sampling.params, [&](const TokenEvent& e) {
    std::fwrite(e.text.data(), 1, e.text.size(), stdout);
    if (e.top) {
      std::fprintf(stderr, "[%d %.4f:", e.id, e.logprob);
      for (const TokenLogprob& t : *e.top) std::fprintf(stderr, " %d=%.4f", t.id, t.logprob);
      std::fprintf(stderr, "]\n");
    }
    std::fflush(stdout);
    return true;
  });
  std::fputc('\n', stdout);
  std::fflush(stdout);
  if (!f.quiet) print_stats(st);
  return 0;
}

}  // namespace

void add_run_command(CLI::App& app, Runner& run) {
  auto f = std::make_shared<RunFlags>();
  auto* cmd = app.add_subcommand("run", "Generate text from a prompt, streamed as it comes");
  f->model.add(cmd, /*model_required=*/false);
  f->ctx.add(cmd);
  f->sampling.add(cmd, 0.0f);
  auto* p = cmd->add_option("-p,--prompt", f->prompt,
                            "the prompt (without -p or -f: text piped in on standard input)");
  cmd->add_option("-f,--file", f->prompt_file, "read the prompt from a file (- for standard input)")
      ->excludes(p);
  cmd->add_option("--prompts-file", f->prompts_file,
                  "one prompt per line; prints one JSON object {\"prompt\", \"text\"} per prompt");
  cmd->add_flag("--no-bos", f->no_bos, "do not start the prompt with BOS");
  cmd->add_flag("--chat", f->chat, "wrap the prompt in the model's Instruct chat template");
  cmd->add_option("--system", f->system, "system message (with --chat)");
  cmd->add_flag("-q,--quiet", f->quiet, "no statistics on stderr");
  cmd->callback([&run, f, p] {
    f->prompt_given = p->count() > 0;
    run = [f] { return run_run(*f); };
  });
}

}  // namespace smoe::app
