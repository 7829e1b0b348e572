// smoe convert IN OUT.gguf: any model smoe reads, written as one GGUF file.
#include <unistd.h>

#include <cstdio>

#include "commands.h"
#include "common.h"
#include "smoe/convert.h"

namespace smoe::app {
namespace {

struct ConvertFlags {
  ConvertOptions opts;
};

int run_convert(ConvertFlags& f) {
  const bool tty = isatty(fileno(stderr));
  f.opts.progress = [tty](int64_t done, int64_t total, uint64_t bytes) {
    if (tty)
      std::fprintf(stderr, "\rconverting: %lld/%lld tensors, %s   ", static_cast<long long>(done),
                   static_cast<long long>(total), human_bytes(bytes).c_str());
  };
  const ConvertSummary s = convert_model(f.opts);
  if (tty) std::fputc('\n', stderr);
  std::fprintf(stderr, "wrote %s: %lld tensors, %s of weights%s\n", f.opts.output.c_str(),
               static_cast<long long>(s.n_tensors), human_bytes(s.bytes).c_str(),
               s.has_tokenizer ? ", with tokenizer" : ", no tokenizer");
  return 0;
}

}  // namespace

void add_convert_command(CLI::App& app, Runner& run) {
  auto f = std::make_shared<ConvertFlags>();
  auto* cmd = app.add_subcommand("convert", "Write any model smoe reads as one GGUF file");
  cmd->add_option("input", f->opts.input,
                  "a .gguf, a Hugging Face or Mistral folder, a llama2.c .bin")
      ->required();
  cmd->add_option("output", f->opts.output, "the .gguf file to write")->required();
  cmd->add_option("--tokenizer", f->opts.tokenizer_path, "tokenizer to embed");
  cmd->add_option("--type", f->opts.out_type, "weight type: f32, f16 or bf16 (default: keep)")
      ->check(CLI::IsMember({"f32", "f16", "bf16", "F32", "F16", "BF16"}));
  cmd->callback([&run, f] { run = [f] { return run_convert(*f); }; });
}

}  // namespace smoe::app
