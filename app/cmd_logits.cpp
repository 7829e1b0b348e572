// smoe logits: the logits of every position of a token sequence, as a float32 .npy
// (positions × vocab). For debugging models and for the reference tests.
#include <algorithm>
#include <cstdio>

#include "commands.h"
#include "common.h"

namespace smoe::app {
namespace {

struct LogitsFlags {
  ModelFlags model;
  std::string ids;
  std::string out;
  int threads = 0;
  int64_t chunk = 0;
  int64_t ctx = 0;
  bool reference = false;
  ContextOptions kv;  // --kv-type, --kv-tokens
};

int run_logits(const LogitsFlags& f) {
  const std::vector<int32_t> ids = parse_ids(f.ids);
  if (ids.empty()) throw std::runtime_error("--ids holds no token ids");
  auto model = Model::load(f.model.options());
  ContextOptions co = f.kv;
  co.n_threads = f.threads;
  co.n_ctx = f.ctx > 0 ? f.ctx : static_cast<int64_t>(ids.size());
  co.max_batch = f.chunk > 0 ? f.chunk : static_cast<int64_t>(ids.size());
  co.reference_kernels = f.reference;
  Context ctx(model, co);
  const int64_t n = static_cast<int64_t>(ids.size()), vocab = ctx.n_vocab();
  std::vector<float> all(static_cast<size_t>(n * vocab));
  // Feed the prompt in chunks of --chunk tokens (all at once by default).
  for (int64_t b = 0; b < n; b += co.max_batch) {
    const int64_t len = std::min(co.max_batch, n - b);
    std::vector<BatchToken> batch;
    for (int64_t i = b; i < b + len; ++i) batch.push_back({ids[i], i, 0, true});
    const float* lg = ctx.decode(batch);
    std::copy(lg, lg + len * vocab, all.begin() + b * vocab);
  }
  write_npy_f32(f.out, all.data(), {n, vocab});
  std::fprintf(stderr, "wrote logits of %lld positions x %lld to %s\n", static_cast<long long>(n),
               static_cast<long long>(vocab), f.out.c_str());
  return 0;
}

}  // namespace

void add_logits_command(CLI::App& app, Runner& run) {
  auto f = std::make_shared<LogitsFlags>();
  auto* cmd = app.add_subcommand("logits", "Write the logits of every position to a .npy file");
  f->model.add(cmd);
  cmd->add_option("--ids", f->ids, "token ids, e.g. \"1 415 2936\"")->required();
  cmd->add_option("--out", f->out, "output .npy file (float32, positions x vocab)")->required();
  cmd->add_option("-t,--threads", f->threads, "threads (0, the default: one per physical core)")
      ->check(is_number())
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--chunk", f->chunk, "pre-fill chunk size (default: all at once)")
      ->check(is_number())
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  cmd->add_option("-c,--ctx-size", f->ctx, "context size (default: the number of ids)")
      ->check(is_number())
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 24));
  cmd->add_flag("--reference", f->reference, "use the scalar reference kernels");
  add_kv_flags(cmd, f->kv);
  cmd->callback([&run, f] { run = [f] { return run_logits(*f); }; });
}

}  // namespace smoe::app
