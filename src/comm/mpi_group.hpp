// ProcessGroup over an MPI communicator. Errors return (MPI_ERRORS_RETURN) and become mt::Error;
// every collective starts non-blocking and waits in hang_watch::wait, which bounds it.
#pragma once
#include <mpi.h>

#include <deque>

#include "comm/process_group.hpp"

namespace mt {

class MpiGroup : public ProcessGroup {
 public:
  // Takes ownership of comm (freed on destruction unless it is MPI_COMM_WORLD or MPI_COMM_SELF).
  MpiGroup(MPI_Comm comm, std::string name);
  ~MpiGroup() override;
  MpiGroup(const MpiGroup&) = delete;
  MpiGroup& operator=(const MpiGroup&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::string& name() const override { return name_; }
  MPI_Comm comm() const { return comm_; }

  void start_all_to_all_v(const float* send, const std::vector<int>& send_counts,
                          const std::vector<int>& send_offsets, float* recv,
                          const std::vector<int>& recv_counts,
                          const std::vector<int>& recv_offsets) override;
  void finish_all_to_all() override;
  void all_to_all_ints(const int* send, int* recv, int per_peer) override;
  void all_gather_ints(const int* send, int* recv, int count) override;
  void all_reduce_sum(float* data, int64_t n) override;
  void all_reduce_sum(double* data, int64_t n) override;
  void broadcast(void* data, int64_t bytes, int root) override;
  void gather(const float* send, int64_t count, float* recv, int root) override;

  // Splits this group: ranks with equal color form a group, ordered by key.
  MpiGroup split(int color, int key, std::string name) const;
  MpiGroup(MpiGroup&& o) noexcept;

 private:
  void check(int rc, const char* call) const;
  // A collective started non-blocking (`started`: the result of `start_call`, which filled
  // `request`), then waited for within dist.timeout_s.
  void await(int started, MPI_Request& request, const char* start_call, const char* call) const;
  MPI_Comm comm_;
  std::string name_;
  int rank_ = 0, size_ = 1;
  struct Pending {  // an all-to-all in flight, with the arrays MPI reads until it completes
    MPI_Request request = MPI_REQUEST_NULL;
    std::vector<int> send_counts, send_offsets, recv_counts, recv_offsets;
  };
  std::deque<Pending> pending_;  // [0, in_flight_) are in flight; a deque keeps them in place
  size_t in_flight_ = 0;
};

}  // namespace mt
