// Hang watch: the waiting loop, and the report when a collective makes no progress.
#include "comm/hang_watch.hpp"

#include <fmt/format.h>
#include <sched.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace mt::hang_watch {

namespace {
using Clock = std::chrono::steady_clock;

struct State {
  MPI_Comm comm = MPI_COMM_NULL;  // the watch's own messages
  double timeout_s = 0;
  int64_t step = -1;
  int64_t calls = 0;  // collectives completed: where a rank is, for its peers
};
State state;

constexpr double kAnswerSeconds = 3;  // how long a reporting rank waits for its peers' answers
constexpr int kTag = 7;

// Every rank that times out sends (step, calls) to every other and listens for theirs: the ranks
// waiting in a collective answer the same way, within kAnswerSeconds of each other; a rank that is
// stopped, hung outside MPI or dead does not.
[[noreturn]] void report(const std::string& group, const char* call, double waited) {
  int rank = 0, size = 1;
  MPI_Comm_rank(state.comm, &rank);
  MPI_Comm_size(state.comm, &size);
  const int64_t mine[2] = {state.step, state.calls};
  std::vector<int64_t> theirs(2 * size_t(size), -1);
  std::vector<MPI_Request> requests;
  for (int p = 0; p < size; ++p) {
    if (p == rank) continue;
    requests.emplace_back();
    MPI_Isend(mine, 2, MPI_INT64_T, p, kTag, state.comm, &requests.back());
    requests.emplace_back();
    MPI_Irecv(&theirs[2 * size_t(p)], 2, MPI_INT64_T, p, kTag, state.comm, &requests.back());
  }
  wait_for(int(requests.size()), requests.data(), kAnswerSeconds);
  std::string silent, behind;
  for (int p = 0; p < size; ++p) {
    if (p == rank) continue;
    const int64_t step = theirs[2 * size_t(p)], calls = theirs[2 * size_t(p) + 1];
    if (step < 0 && calls < 0)
      silent += fmt::format("{}{}", silent.empty() ? "" : ", ", p);
    else if (step != state.step || calls != state.calls)
      behind += fmt::format("; rank {} is at step {} after {} collectives", p, step, calls);
  }
  const std::string peers =
      silent.empty()
          ? "every rank answered" + behind
          : fmt::format("rank {} did not answer within {:.0f} s (stopped, hung or dead){}", silent,
                        kAnswerSeconds, behind);
  std::fprintf(stderr,
               "moetrain: rank %d: error: no progress for %.0f s in %s of group '%s' at step %lld "
               "(after %lld collectives; dist.timeout_s %.0f): %s\n",
               rank, waited, call, group.c_str(), static_cast<long long>(state.step + 1),
               static_cast<long long>(state.calls), state.timeout_s, peers.c_str());
  std::fflush(stderr);
  MPI_Abort(state.comm, 2);
  std::abort();  // MPI_Abort does not return
}
}  // namespace

void configure(MPI_Comm comm, double timeout_s) {
  if (state.comm == MPI_COMM_NULL) MPI_Comm_dup(comm, &state.comm);
  state.timeout_s = timeout_s;
}

void set_step(int64_t step) {
  state.step = step;
}

bool wait_for(int count, MPI_Request* requests, double seconds) {
  const auto start = Clock::now();
  do {
    int done = 0;
    MPI_Testall(count, requests, &done, MPI_STATUSES_IGNORE);
    if (done) return true;
    sched_yield();
  } while (std::chrono::duration<double>(Clock::now() - start).count() < seconds);
  return false;
}

int wait(MPI_Request& request, const std::string& group, const char* call) {
  if (state.timeout_s <= 0 || state.comm == MPI_COMM_NULL) {
    const int rc = MPI_Wait(&request, MPI_STATUS_IGNORE);
    ++state.calls;
    return rc;
  }
  const auto start = Clock::now();
  for (uint32_t i = 0;; ++i) {
    int done = 0;
    const int rc = MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS || done) {
      ++state.calls;
      return rc;
    }
    if (i % 256 == 0) {
      const double waited = std::chrono::duration<double>(Clock::now() - start).count();
      if (waited > state.timeout_s) report(group, call, waited);
    }
    sched_yield();  // ranks may share cores
  }
}

}  // namespace mt::hang_watch
