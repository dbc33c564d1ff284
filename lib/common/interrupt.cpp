// The process-wide record of SIGINT/SIGTERM; see interrupt.h.
#include "common/interrupt.h"

#include <csignal>
#include <unistd.h>

namespace hyft {

namespace {

volatile std::sig_atomic_t g_signal = 0;

extern "C" void on_interrupt(int sig) {
  if (g_signal != 0) _exit(128 + sig);  // the second signal: stop now
  g_signal = sig;
}

}  // namespace

void install_interrupt_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int interrupt_signal() { return g_signal; }

void clear_interrupt() { g_signal = 0; }

void stop_if_interrupted(const char* phase) {
  const int sig = g_signal;
  if (sig == 0) return;
  throw Interrupted(sig, std::string(sig == SIGINT ? "interrupted" : "terminated") + " while " + phase +
                             "; nothing was written");
}

}  // namespace hyft
