// ProcessGroup: the collectives moetrain uses, over one group of ranks. Every rank of the group
// calls every collective in the same order, even with nothing to send (docs/design.md, "Rules that
// keep it simple"). A failure throws mt::Error naming the group and the call; the caller's exit
// path then ends every rank (MPI_Abort), so no rank is left waiting.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tensor/tensor.hpp"

namespace mt {

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual const std::string& name() const = 0;
  // Where the float payloads of all_to_all_v, all_reduce_sum(float*) and gather live.
  virtual Device device() const { return Device::CPU; }

  // Variable all-to-all of floats: send_counts[p] floats (contiguous, in peer order) go to peer
  // p; recv_counts[p] floats arrive from peer p, in peer order. Both count vectors are known to
  // the caller (exchange them first with all_to_all_counts).
  void all_to_all_v(const float* send, const std::vector<int>& send_counts, float* recv,
                    const std::vector<int>& recv_counts);
  // The same with each peer's chunk at its own offset (floats from the buffer's start) in send
  // and in recv, started and left in flight: finish_all_to_all() waits for every exchange this
  // group started, in order; until then the buffers stay untouched. Exchanges in flight on one
  // group progress while another group's run (the hierarchical exchange's two stages).
  virtual void start_all_to_all_v(const float* send, const std::vector<int>& send_counts,
                                  const std::vector<int>& send_offsets, float* recv,
                                  const std::vector<int>& recv_counts,
                                  const std::vector<int>& recv_offsets) = 0;
  virtual void finish_all_to_all() = 0;
  // Fixed all-to-all of `per_peer` ints to every peer (counts, metadata).
  virtual void all_to_all_ints(const int* send, int* recv, int per_peer) = 0;
  virtual void all_gather_ints(const int* send, int* recv, int count) = 0;
  virtual void all_reduce_sum(float* data, int64_t n) = 0;
  virtual void all_reduce_sum(double* data, int64_t n) = 0;
  virtual void broadcast(void* data, int64_t bytes, int root) = 0;
  // Gathers `count` floats from every rank to root, in rank order (recv used on root only).
  virtual void gather(const float* send, int64_t count, float* recv, int root) = 0;

  // recv_counts[p] = what peer p sends this rank, from every rank's send_counts.
  std::vector<int> exchange_counts(const std::vector<int>& send_counts);
  // Collective: runs `io` on rank 0 only (file writes); when it throws mt::Error, every rank
  // throws rank 0's message, so no rank is left waiting and each says why.
  void on_root(const std::function<void()>& io);

 private:
  std::vector<int> send_offsets_, recv_offsets_;  // all_to_all_v's, reused: no allocation per call
};

}  // namespace mt
