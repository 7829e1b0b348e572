#include "log.h"

#include <ctime>

#include "common.h"

namespace smoe::app {

LogSettings& log_settings() {
  static LogSettings s;
  return s;
}

void log_line(const std::string& line, bool to_stderr) {
  const LogSettings& s = log_settings();
  if (to_stderr || s.verbose) std::fprintf(stderr, "%s\n", line.c_str());
  if (s.file.empty()) return;
  if (FILE* f = std::fopen(s.file.c_str(), "a")) {
    const std::time_t t = std::time(nullptr);
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", std::localtime(&t));
    std::fprintf(f, "%s %s\n", when, line.c_str());
    std::fclose(f);
  }
}

void log_model(const Model& m, const Context& ctx) {
  const ModelInfo& i = m.info();
  verbose("model: {} ({})", i.path, i.format);
  verbose(
      "model: {} {} layers, dim {}, {} experts ({} per token), vocab {}, {} parameters ({} active)",
      i.architecture, i.n_layers, i.dim, i.n_experts, i.n_experts_used, i.vocab_size,
      human_count(i.total_params), human_count(i.active_params));
  verbose("weights: {}, {} read per decoded token", human_bytes(i.weight_bytes),
          human_bytes(i.decode_bytes_per_token));
  verbose("tokenizer: {}", m.tokenizer() ? std::to_string(m.tokenizer()->n_vocab()) + " pieces"
                                         : std::string("none"));
  verbose("context: {} tokens, {} threads, kernels {}", ctx.n_ctx(), ctx.n_threads(),
          ctx.backend_name());
}

}  // namespace smoe::app
