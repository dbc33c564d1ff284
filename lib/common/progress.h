// Progress of long operations on stderr: done/total, rate and ETA. On a terminal
// one line redrawn a few times a second; elsewhere (logs, CI) a plain line every
// 10 seconds and one at the end. Silent when disabled.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace hyft {

class Progress {
 public:
  Progress(std::string label, int64_t total, bool enabled);
  void advance(int64_t n = 1);
  void finish();  // ends the line

  // True when stderr is a terminal: the default for `enabled`.
  static bool stderr_is_terminal();

 private:
  void draw();
  std::string label_;
  int64_t total_, done_ = 0;
  bool enabled_, drawn_ = false, terminal_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace hyft
