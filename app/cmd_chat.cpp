// smoe chat: an interactive conversation with the Instruct template. Streams answers, keeps the
// history within the context (oldest turns dropped with a notice), Ctrl-C stops the current
// answer, Ctrl-D or /exit leaves, /reset clears. Works with stdin from a pipe (one turn a line).
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "commands.h"
#include "common.h"
#include "log.h"
#include "smoe/chat.h"

namespace smoe::app {
namespace {

std::atomic<bool> g_interrupted{false};  // set by SIGINT; the program's only signal state

void on_sigint(int) {
  g_interrupted.store(true);
}

struct ChatFlags {
  ModelFlags model;
  ContextFlags ctx;
  SamplingFlags sampling;
  std::string system;
  bool raw = false;
  bool quiet = false;
};

// Drops the oldest user/assistant pair until the prompt leaves room for an answer.
std::vector<int32_t> fit_history(const Tokenizer& tok, std::vector<ChatMessage>& msgs,
                                 int64_t budget, ChatFormat format) {
  const size_t first = !msgs.empty() && msgs[0].role == "system" ? 1 : 0;
  for (;;) {
    std::vector<int32_t> ids = encode_chat(tok, msgs, format);
    if (static_cast<int64_t>(ids.size()) <= budget) return ids;
    if (msgs.size() - first < 3)
      throw std::runtime_error("this message alone (" + std::to_string(ids.size()) +
                               " tokens) does not fit the context: raise --ctx-size");
    msgs.erase(msgs.begin() + static_cast<std::ptrdiff_t>(first),
               msgs.begin() + static_cast<std::ptrdiff_t>(first) + 2);
    std::fprintf(stderr, "[context full: the oldest turn was dropped]\n");
  }
}

int run_chat(ChatFlags& f) {
  if (f.model.model.empty()) {
    f.model.model = demo_model_path();
    if (!f.quiet)
      std::fprintf(stderr,
                   "smoe chat: no model given: using the built-in demo model %s (a tiny "
                   "Mixtral-style MoE that adds numbers and sorts digits; try 417+86=)\n",
                   f.model.model.c_str());
  }
  auto model = Model::load(f.model.options());
  auto tok = model->tokenizer();
  if (!tok) throw std::runtime_error("the model carries no tokenizer: give one with --tokenizer");
  Session session(model, f.ctx.options);
  log_model(*model, session.context());
  const ChatTemplate tmpl = chat_template_for(model->info().chat_template, *tok);
  if (!f.quiet && !f.raw && tmpl.format != ChatFormat::MistralInstruct)
    std::fprintf(stderr, "smoe chat: turns as %s (%s)\n", chat_format_name(tmpl.format),
                 tmpl.why.c_str());
  const bool tty = isatty(fileno(stdin));
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigaction(SIGINT, &sa, nullptr);  // no SA_RESTART: Ctrl-C at the prompt interrupts the read

  std::vector<ChatMessage> msgs;
  if (!f.system.empty()) msgs.push_back({"system", f.system});
  const int64_t answer_room = f.sampling.params.n_predict > 0 ? f.sampling.params.n_predict : 256;
  const int64_t budget = session.context().n_ctx() - answer_room;
  if (!f.quiet)
    std::fprintf(stderr,
                 "smoe chat: %s. /exit or Ctrl-D leaves, /reset clears, Ctrl-C stops an "
                 "answer.\n",
                 model->info().path.c_str());
  std::string line;
  for (;;) {
    if (tty) std::fputs("> ", stdout), std::fflush(stdout);
    g_interrupted = false;
    if (!std::getline(std::cin, line)) {
      if (g_interrupted && tty) {  // Ctrl-C at the prompt: a fresh prompt, not an exit
        std::cin.clear();
        std::fputc('\n', stdout);
        continue;
      }
      break;
    }
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      msgs.resize(f.system.empty() ? 0 : 1);
      session.reset();
      std::fprintf(stderr, "[conversation cleared]\n");
      continue;
    }
    if (line.empty()) continue;
    msgs.push_back({"user", line});
    // --raw: a base model has no template; each line is a prompt to complete, no history.
    const std::vector<int32_t> ids =
        f.raw ? tok->encode(line, {}) : fit_history(*tok, msgs, budget, tmpl.format);
    if (f.raw) msgs.clear();
    std::string answer;
    g_interrupted = false;
    const GenerateStats st = session.generate(ids, f.sampling.params, [&](const TokenEvent& e) {
      std::fwrite(e.text.data(), 1, e.text.size(), stdout);
      std::fflush(stdout);
      answer += e.text;
      return !g_interrupted.load();
    });
    std::fputc('\n', stdout);
    if (st.stop_reason == "cancelled") std::fprintf(stderr, "[answer stopped]\n");
    if (!f.quiet) print_stats(st);
    if (!f.raw) msgs.push_back({"assistant", answer});
  }
  return 0;
}

}  // namespace

void add_chat_command(CLI::App& app, Runner& run) {
  auto f = std::make_shared<ChatFlags>();
  auto* cmd = app.add_subcommand("chat", "Talk with an Instruct model, turn by turn");
  f->model.add(cmd, /*model_required=*/false);
  f->ctx.add(cmd);
  f->sampling.add(cmd, 0.7f);
  f->sampling.params.n_predict = 512;
  cmd->add_option("--system", f->system, "system message, put before the first user turn");
  cmd->add_flag("--raw", f->raw,
                "no chat template and no history: each line is a prompt for a base model to "
                "complete (e.g. the built-in demo model)");
  cmd->add_flag("-q,--quiet", f->quiet, "no banner and statistics on stderr");
  cmd->callback([&run, f] { run = [f] { return run_chat(*f); }; });
}

}  // namespace smoe::app
