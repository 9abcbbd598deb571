// Bounded waits on MPI. Every collective of an MpiGroup starts non-blocking and is waited for
// here; when one makes no progress within the timeout (dist.timeout_s), the rank asks every other
// rank, over a communicator of its own, where it is, prints the collective, the group, the step
// and the ranks that did not answer within a few seconds (the one it waited on: stopped, hung or
// dead), and ends the job (MPI_Abort, exit code 2). Until configure() waits are unbounded.
#pragma once
#include <mpi.h>

#include <cstdint>
#include <string>

namespace mt::hang_watch {

// Collective over `comm` (duplicated for the watch's own messages). timeout_s <= 0: unbounded.
void configure(MPI_Comm comm, double timeout_s);
// The step this rank is in, for the message.
void set_step(int64_t step);
// Waits for `request` (a collective of `group`, started by `call`); returns MPI's result code.
int wait(MPI_Request& request, const std::string& group, const char* call);
// Polls `count` requests for at most `seconds`: true when all completed.
bool wait_for(int count, MPI_Request* requests, double seconds);

}  // namespace mt::hang_watch
