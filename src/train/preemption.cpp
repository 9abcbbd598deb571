// Signal handlers that only set a flag (async-signal-safe); the training loop polls it. The
// signals are blocked in the calling (compute) thread and taken by a thread that only waits for
// them: delivered on the compute thread in a run's first steps, with oneDNN's GEMMs (not with
// OpenBLAS), SIGUSR1 corrupted the heap (found by tests/soak.sh; `preempt` keeps the case).
#include "train/preemption.hpp"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <thread>

namespace mt {

namespace {
std::atomic<bool> requested{false};
extern "C" void on_signal(int) {
  requested.store(true);
}
}  // namespace

void install_preemption_handlers() {
  std::signal(SIGUSR1, on_signal);
  std::signal(SIGTERM, on_signal);
  std::thread([] {
    for (;;) pause();  // the signals run their handler here (or on a thread of MPI's)
  }).detach();
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // not on this thread, nor on those it starts
}

bool preemption_requested() {
  return requested.load();
}

}  // namespace mt
