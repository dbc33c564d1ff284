#include "common/progress.h"

#include <unistd.h>

#include <cstdio>

namespace hyft {

Progress::Progress(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)), total_(total), enabled_(enabled), terminal_(stderr_is_terminal()),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

bool Progress::stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

void Progress::advance(int64_t n) {
  done_ += n;
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const auto every = terminal_ ? std::chrono::milliseconds(250) : std::chrono::milliseconds(10000);
  if (done_ < total_ && now - last_draw_ < every) return;
  if (!terminal_ && done_ >= total_) return;  // finish() writes the last line
  last_draw_ = now;
  draw();
}

void Progress::draw() {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? double(done_) / elapsed : 0.0;
  const double eta = rate > 0 ? double(total_ - done_) / rate : 0.0;
  std::fprintf(stderr, "%s%s %lld/%lld (%.0f%%)  %.1f/s  ETA %.0fs%s", terminal_ ? "\r" : "", label_.c_str(),
               static_cast<long long>(done_), static_cast<long long>(total_),
               total_ ? 100.0 * double(done_) / double(total_) : 100.0, rate, eta, terminal_ ? "   " : "\n");
  std::fflush(stderr);
  drawn_ = true;
}

void Progress::finish() {
  if (enabled_ && !terminal_ && drawn_) draw();  // the final count, when the log had earlier lines
  if (enabled_ && terminal_ && drawn_) std::fprintf(stderr, "\n");
  drawn_ = false;
}

}  // namespace hyft
