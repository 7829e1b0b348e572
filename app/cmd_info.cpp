#include "commands.h"

namespace smoe::app {
void add_info_command(CLI::App& app, Runner& run) {
  auto* cmd = app.add_subcommand("info", "(in progress)");
  cmd->callback([&run] { run = [] { return 1; }; });
}
}  // namespace smoe::app
