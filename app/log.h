// The program's messages: --verbose details on stderr, and everything (details, statistics,
// errors) appended to --log-file when one is given. App layer only: the library does not log.
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <string>

namespace smoe {
class Model;
class Context;
}  // namespace smoe

namespace smoe::app {

struct LogSettings {
  bool verbose = false;
  std::string file;
};

LogSettings& log_settings();  // filled by main() from --verbose / --log-file

// A message for the log file, and for stderr when `to_stderr` or --verbose.
void log_line(const std::string& line, bool to_stderr);

template <typename... Args>
void verbose(fmt::format_string<Args...> f, Args&&... args) {
  log_line(fmt::format(f, std::forward<Args>(args)...), false);
}

// What a loaded model and its context are, with --verbose.
void log_model(const Model& m, const Context& ctx);

}  // namespace smoe::app
