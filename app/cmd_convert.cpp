// smoe convert IN OUT.gguf: any model smoe reads, written as one GGUF file.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>

#include "commands.h"
#include "common.h"
#include "smoe/convert.h"

namespace smoe::app {
namespace {

struct ConvertFlags {
  ConvertOptions opts;
  bool quiet = false;
};

// A progress bar on a terminal, plain lines otherwise.
std::function<void(int64_t, int64_t, uint64_t)> progress_printer(const char* verb) {
  const bool tty = isatty(fileno(stderr));
  auto start = std::chrono::steady_clock::now();
  return [tty, verb, start](int64_t done, int64_t total, uint64_t bytes) {
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double eta =
        done > 0 ? s * static_cast<double>(total - done) / static_cast<double>(done) : 0;
    if (tty) {
      const int width = 30, filled = total > 0 ? static_cast<int>(width * done / total) : width;
      std::fprintf(stderr, "\r%s [%s%s] %lld/%lld tensors, %s, ETA %.0fs   ", verb,
                   std::string(static_cast<size_t>(filled), '#').c_str(),
                   std::string(static_cast<size_t>(width - filled), '.').c_str(),
                   static_cast<long long>(done), static_cast<long long>(total),
                   human_bytes(bytes).c_str(), eta);
      if (done == total) std::fputc('\n', stderr);
    } else if (done == total || done % 16 == 0) {
      std::fprintf(stderr, "%s: %lld/%lld tensors, %s\n", verb, static_cast<long long>(done),
                   static_cast<long long>(total), human_bytes(bytes).c_str());
    }
  };
}

int run_convert(ConvertFlags& f, const char* verb) {
  if (!f.quiet) f.opts.progress = progress_printer(verb);
  const ConvertSummary s = convert_model(f.opts);
  std::map<std::string, std::pair<uint64_t, double>> by_type;  // bytes, worst error
  for (const TensorReport& t : s.tensors) {
    auto& e = by_type[t.dtype];
    e.first += t.bytes;
    e.second = std::max(e.second, t.relative_rmse);
  }
  if (!f.opts.out_type.empty() && !f.quiet) {
    std::fprintf(stderr, "\n%-44s %-6s %12s %s\n", "tensor", "type", "bytes", "relative RMSE");
    for (const TensorReport& t : s.tensors)
      if (t.relative_rmse > 0)
        std::fprintf(stderr, "%-44s %-6s %12llu %.5f\n", t.name.c_str(), t.dtype.c_str(),
                     static_cast<unsigned long long>(t.bytes), t.relative_rmse);
    std::fprintf(stderr, "\nby type:\n");
    for (const auto& [type, e] : by_type)
      std::fprintf(stderr, "  %-6s %12s  worst relative RMSE %.5f\n", type.c_str(),
                   human_bytes(e.first).c_str(), e.second);
  }
  std::map<std::string, std::vector<const TensorReport*>> fell_back;  // by the type asked for
  for (const TensorReport& t : s.tensors)
    if (!t.wanted.empty()) fell_back[t.wanted + " → " + t.dtype].push_back(&t);
  for (const auto& [change, ts] : fell_back)  // even with -q: the file is not what was asked
    std::fprintf(stderr,
                 "smoe: notice: %zu tensor(s) written as %s: their rows are not a whole number "
                 "of the type's blocks (first: %s)\n",
                 ts.size(), change.c_str(), ts[0]->name.c_str());
  std::fprintf(stderr, "wrote %s: %lld tensors, %s of weights%s\n", f.opts.output.c_str(),
               static_cast<long long>(s.n_tensors), human_bytes(s.bytes).c_str(),
               s.has_tokenizer ? ", with tokenizer" : ", no tokenizer");
  return 0;
}

CLI::App* add_common(CLI::App& app, const char* name, const char* help, ConvertFlags& f) {
  auto* cmd = app.add_subcommand(name, help);
  cmd->add_option("input", f.opts.input,
                  "a .gguf, a Hugging Face or Mistral folder, a llama2.c .bin")
      ->required();
  cmd->add_option("output", f.opts.output, "the .gguf file to write")->required();
  cmd->add_option("--tokenizer", f.opts.tokenizer_path, "tokenizer to embed");
  cmd->add_flag("-q,--quiet", f.quiet, "no progress or summary");
  return cmd;
}

}  // namespace

void add_convert_command(CLI::App& app, Runner& run) {
  auto f = std::make_shared<ConvertFlags>();
  auto* cmd = add_common(app, "convert", "Write any model smoe reads as one GGUF file", *f);
  cmd->add_option("--type", f->opts.out_type, "weight type: F32, F16, BF16 (default: keep)")
      ->check(CLI::IsMember({"f32", "f16", "bf16", "F32", "F16", "BF16"}));
  cmd->callback([&run, f] { run = [f] { return run_convert(*f, "converting"); }; });
}

void add_quantize_command(CLI::App& app, Runner& run) {
  auto f = std::make_shared<ConvertFlags>();
  static const std::string about =
      fmt::format("Quantize a model to GGUF: {} (router and norms stay f32)", kOutputTypes);
  auto* cmd = add_common(app, "quantize", about.c_str(), *f);
  cmd->add_option("--type", f->opts.out_type, "output type or mix")->required();
  cmd->callback([&run, f] { run = [f] { return run_convert(*f, "quantizing"); }; });
}

}  // namespace smoe::app
