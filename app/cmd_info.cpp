// smoe info MODEL: architecture, hyper-parameters, parameter counts and the tensor table.
#include <cstdio>

#include "commands.h"
#include "common.h"

namespace smoe::app {
namespace {

struct InfoFlags {
  std::string model;
  bool no_tensors = false;
};

int run_info(const InfoFlags& f) {
  const ModelInfo i = inspect_model(f.model);
  std::printf("model:        %s\n", i.path.c_str());
  std::printf("format:       %s\n", i.format.c_str());
  if (i.n_experts > 0)
    std::printf("architecture: %s (sparse mixture of experts: %lld experts, %lld per token)\n",
                i.architecture.c_str(), static_cast<long long>(i.n_experts),
                static_cast<long long>(i.n_experts_used));
  else
    std::printf("architecture: %s (dense)\n", i.architecture.c_str());
  std::printf("dim:          %lld\nlayers:       %lld\n", static_cast<long long>(i.dim),
              static_cast<long long>(i.n_layers));
  std::printf("heads:        %lld query, %lld key/value (head_dim %lld)\n",
              static_cast<long long>(i.n_heads), static_cast<long long>(i.n_kv_heads),
              static_cast<long long>(i.head_dim));
  std::printf("ffn hidden:   %lld\nvocab:        %lld\n", static_cast<long long>(i.hidden_dim),
              static_cast<long long>(i.vocab_size));
  std::printf("rope theta:   %g\nrms eps:      %g\n", i.rope_theta, i.norm_eps);
  std::printf("context:      %lld\n", static_cast<long long>(i.max_context));
  if (i.sliding_window > 0)
    std::printf("attention:    sliding window of %lld\n", static_cast<long long>(i.sliding_window));
  else
    std::printf("attention:    full (no window)\n");
  std::printf("embeddings:   %s\n",
              i.tied_embeddings ? "tied with the LM head" : "separate LM head");
  std::printf("parameters:   %s total, %s active per token (%lld / %lld)\n",
              human_count(i.total_params).c_str(), human_count(i.active_params).c_str(),
              static_cast<long long>(i.total_params), static_cast<long long>(i.active_params));
  if (i.tensors.empty()) {
    std::printf("weights:      none (configuration only)\n");
    return 0;
  }
  std::printf("weights:      %s in %zu tensors\n", human_bytes(i.weight_bytes).c_str(),
              i.tensors.size());
  if (f.no_tensors) return 0;
  std::printf("\n%-56s %-6s %-24s %s\n", "tensor", "dtype", "shape", "bytes");
  for (const TensorInfo& t : i.tensors) {
    std::string shape = "[";
    for (size_t d = 0; d < t.shape.size(); ++d)
      shape += (d ? ", " : "") + std::to_string(t.shape[d]);
    shape += "]";
    std::printf("%-56s %-6s %-24s %llu\n", t.name.c_str(), t.dtype.c_str(), shape.c_str(),
                static_cast<unsigned long long>(t.nbytes));
  }
  return 0;
}

}  // namespace

void add_info_command(CLI::App& app, Runner& run) {
  auto flags = std::make_shared<InfoFlags>();
  auto* cmd = app.add_subcommand(
      "info", "Describe a model: architecture, hyper-parameters, parameter counts, tensors");
  cmd->add_option("model,-m,--model", flags->model,
                  "a .gguf file, a model folder, a llama2.c .bin, or a bare config.json / "
                  "params.json")
      ->required();
  cmd->add_flag("--no-tensors", flags->no_tensors, "omit the tensor table");
  cmd->callback([&run, flags] { run = [flags] { return run_info(*flags); }; });
}

}  // namespace smoe::app
