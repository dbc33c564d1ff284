// Ctrl-C (SIGINT) and SIGTERM during long commands. `install_interrupt_handlers` is
// the first thing `hyft finetune` does, so no signal is lost while it loads: the first
// signal is recorded and the command stops at its next safe point (between training
// steps, with a checkpoint; between loading phases, with nothing written); a second
// signal ends the process at once (exit 128 + signal).
#pragma once

#include <stdexcept>
#include <string>

namespace hyft {

// Stopped by a signal before anything needed saving; main exits 128 + signal.
class Interrupted : public std::runtime_error {
 public:
  Interrupted(int signal, const std::string& what) : std::runtime_error(what), signal(signal) {}
  int signal;
};

void install_interrupt_handlers();
// 0, or the first SIGINT/SIGTERM received since the handlers were installed.
int interrupt_signal();
// Throws Interrupted ("<signal name> while <phase>; nothing was written") after a signal.
void stop_if_interrupted(const char* phase);
// Tests: forget a recorded signal.
void clear_interrupt();

}  // namespace hyft
