// smoe run: generate a continuation of a prompt and stream it to stdout.
#include <cstdio>

#include "commands.h"
#include "common.h"
#include "smoe/chat.h"

namespace smoe::app {
namespace {

struct RunFlags {
  ModelFlags model;
  ContextFlags ctx;
  SamplingFlags sampling;
  std::string prompt;
  std::string prompt_file;
  bool no_bos = false;
  bool chat = false;
  std::string system;
  bool quiet = false;
};

int run_run(RunFlags& f) {
  if (!f.prompt_file.empty()) f.prompt = read_text_file(f.prompt_file);
  auto model = Model::load(f.model.options());
  auto tok = model->tokenizer();
  if (!tok)
    throw std::runtime_error("the model '" + f.model.model +
                             "' carries no tokenizer: give one with --tokenizer FILE");
  EncodeOptions eo;
  eo.add_bos = !f.no_bos;
  std::vector<ChatMessage> msgs;
  if (!f.system.empty()) msgs.push_back({"system", f.system});
  msgs.push_back({"user", f.prompt});
  const std::vector<int32_t> prompt = f.chat ? encode_chat(*tok, msgs) : tok->encode(f.prompt, eo);
  Session session(model, f.ctx.options);
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
  f->model.add(cmd);
  f->ctx.add(cmd);
  f->sampling.add(cmd, 0.0f);
  cmd->add_option("-p,--prompt", f->prompt, "the prompt");
  cmd->add_option("-f,--file", f->prompt_file, "read the prompt from a file")->excludes("-p");
  cmd->add_flag("--no-bos", f->no_bos, "do not start the prompt with BOS");
  cmd->add_flag("--chat", f->chat, "wrap the prompt in the model's Instruct chat template");
  cmd->add_option("--system", f->system, "system message (with --chat)");
  cmd->add_flag("-q,--quiet", f->quiet, "no statistics on stderr");
  cmd->callback([&run, f] { run = [f] { return run_run(*f); }; });
}

}  // namespace smoe::app
