// smoe: the command-line program. It only parses arguments and dispatches to a subcommand; every
// error reaches the user as one line on stderr, "smoe: error: ...", with exit code 2 for a
// mistake in how smoe was called (parse errors, UsageError) and 1 for everything else.
#include <cstdio>
#include <exception>

#include "commands.h"
#include "common.h"
#include "log.h"

int main(int argc, char** argv) {
  CLI::App app{"smoe: fast inference for Mixtral / Mistral mixture-of-experts models"};
  app.require_subcommand(0, 1);
  smoe::app::Runner run;
  app.fallthrough();  // --verbose / --log-file may come after the subcommand
  auto& log = smoe::app::log_settings();
  app.add_flag("-v,--verbose", log.verbose, "print what was loaded and how it runs");
  app.add_option("--log-file", log.file, "append messages, statistics and errors to this file");
  smoe::app::add_info_command(app, run);
  smoe::app::add_logits_command(app, run);
  smoe::app::add_run_command(app, run);
  smoe::app::add_convert_command(app, run);
  smoe::app::add_tokenize_commands(app, run);
  smoe::app::add_bench_command(app, run);
  smoe::app::add_chat_command(app, run);
  smoe::app::add_quantize_command(app, run);
  smoe::app::add_perplexity_command(app, run);
  smoe::app::add_routing_command(app, run);
  smoe::app::add_eval_command(app, run);
  smoe::app::add_passkey_command(app, run);
  smoe::app::add_serve_command(app, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {  // one line, as every other error
    smoe::app::log_line(std::string("smoe: error: ") + e.what() + " (--help lists the options)",
                        true);
    return 2;
  }
  if (!run) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  }
  try {
    return run();
  } catch (const smoe::app::UsageError& e) {
    smoe::app::log_line(std::string("smoe: error: ") + e.what(), true);
    return 2;
  } catch (const std::exception& e) {
    smoe::app::log_line(std::string("smoe: error: ") + e.what(), true);
    return 1;
  }
}
