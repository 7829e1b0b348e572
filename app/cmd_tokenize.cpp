#include "commands.h"

namespace smoe::app {
void add_tokenize_commands(CLI::App& app, Runner& run) {
  auto* cmd = app.add_subcommand("tokenize", "(in progress)");
  cmd->callback([&run] { run = [] { return 1; }; });
}
}  // namespace smoe::app
