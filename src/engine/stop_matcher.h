// Finds stop strings in streamed text across token boundaries. Text that might be the start of a
// stop string is held back until it is known not to be one; a stop string is never emitted.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace smoe {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);
  // Adds text; returns what may be shown now. Sets stopped() when a stop string completed (the
  // text before it is returned, nothing after it).
  std::string push(std::string_view text);
  // Releases what was held back (at the end of generation, when no stop string completed).
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace smoe
