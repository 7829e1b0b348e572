#include "commands.h"

namespace smoe::app {
void add_run_command(CLI::App& app, Runner& run) {
  auto* cmd = app.add_subcommand("run", "(in progress)");
  cmd->callback([&run] { run = [] { return 1; }; });
}
}  // namespace smoe::app
