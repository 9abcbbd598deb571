// NcclGroup: a ProcessGroup whose float payloads (token exchange, gradient all-reduce, gather)
// are device memory moved by NCCL on the rank's stream. MPI stays in control: the group is built
// over an MpiGroup's ranks (rank 0 makes the ncclUniqueId and broadcasts it over MPI), and the
// host-side calls (ints, doubles, broadcast) go to that MpiGroup.
// The communicator is non-blocking: every wait polls NCCL's asynchronous error and a deadline
// (MOETRAIN_NCCL_TIMEOUT_S, default 600 s); an error or a peer that never comes aborts the
// communicator and throws mt::Error, so the caller's exit path ends every rank instead of hanging.
#pragma once
#include "comm/mpi_group.hpp"

namespace mt {

class NcclGroup : public ProcessGroup {
 public:
  explicit NcclGroup(MpiGroup& host);  // collective over host's ranks
  ~NcclGroup() override;
  NcclGroup(const NcclGroup&) = delete;
  NcclGroup& operator=(const NcclGroup&) = delete;

  int rank() const override { return host_.rank(); }
  int size() const override { return host_.size(); }
  const std::string& name() const override { return name_; }
  Device device() const override { return Device::CUDA; }

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

 private:
  // Checks a NCCL call's result; ncclInProgress is fine for a non-blocking communicator.
  void check(int result, const char* call);
  // Waits until the queued NCCL work has finished, polling for errors and the deadline.
  void wait(const char* call);
  MpiGroup& host_;
  std::string name_;
  void* comm_ = nullptr;  // ncclComm_t
  double timeout_s_;
};

}  // namespace mt
