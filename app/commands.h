// Each subcommand lives in its own file (cmd_<name>.cpp) and adds itself to the CLI here.
// Commands use only the public API in include/smoe/.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace smoe::app {

// What runs the chosen subcommand; returns the process exit code.
using Runner = std::function<int()>;

// Adds the subcommand to `app`; when it is chosen, CLI11's callback stores its runner in `run`.
void add_info_command(CLI::App& app, Runner& run);
void add_logits_command(CLI::App& app, Runner& run);
void add_run_command(CLI::App& app, Runner& run);
void add_convert_command(CLI::App& app, Runner& run);
void add_tokenize_commands(CLI::App& app, Runner& run);  // tokenize + detokenize
void add_bench_command(CLI::App& app, Runner& run);
void add_chat_command(CLI::App& app, Runner& run);
void add_quantize_command(CLI::App& app, Runner& run);
void add_perplexity_command(CLI::App& app, Runner& run);  // perplexity, KL divergence
void add_routing_command(CLI::App& app, Runner& run);
void add_eval_command(CLI::App& app, Runner& run);
void add_passkey_command(CLI::App& app, Runner& run);
void add_serve_command(CLI::App& app, Runner& run);

}  // namespace smoe::app
