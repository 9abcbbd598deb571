// Signal handlers that only set a flag (async-signal-safe); the training loop polls it.
#include "train/preemption.hpp"

#include <csignal>

namespace mt {

namespace {
volatile std::sig_atomic_t requested = 0;
extern "C" void on_signal(int) {
  requested = 1;
}
}  // namespace

void install_preemption_handlers() {
  std::signal(SIGUSR1, on_signal);
  std::signal(SIGTERM, on_signal);
}

bool preemption_requested() {
  return requested != 0;
}

}  // namespace mt
