// The one error type of the library. Every boundary (file, request, flag) throws smoe::Error with a
// message that names what was wrong and where; the CLI and server turn it into one line for the
// user.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace smoe {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Throws smoe::Error with a fmt-formatted message.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace smoe
