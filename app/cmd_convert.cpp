#include "commands.h"

namespace smoe::app {
void add_convert_command(CLI::App& app, Runner& run) {
  auto* cmd = app.add_subcommand("convert", "(in progress)");
  cmd->callback([&run] { run = [] { return 1; }; });
}
}  // namespace smoe::app
