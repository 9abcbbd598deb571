// Token exchange within the EP group, flat or hierarchical (docs/methods.md §6.2); both deliver the
// same floats in the same order: chunks from every source rank, in source-rank order.
// Counts are in floats per peer. Each exchange adds to the statistics (bytes sent, seconds).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "comm/process_group.hpp"
#include "tensor/buffer.hpp"

namespace mt {

class AllToAll {
 public:
  explicit AllToAll(ProcessGroup& group) : g_(group) {}
  virtual ~AllToAll() = default;
  virtual void exchange(const float* send, const std::vector<int>& send_counts, float* recv,
                        const std::vector<int>& recv_counts) = 0;
  int size() const { return g_.size(); }
  // Metadata: `per_peer` ints to every peer of the group (one flat exchange in both kinds).
  void exchange_ints(const int* send, int* recv, int per_peer) {
    g_.all_to_all_ints(send, recv, per_peer);
    ++calls;
  }

  double seconds = 0;     // time inside exchanges since the last reset_stats()
  double bytes_sent = 0;  // payload bytes this rank sent to other ranks
  int64_t messages = 0;   // point-to-point messages this rank sent to other ranks
  int64_t calls = 0;      // exchanges of either kind (counts or floats)
  void reset_stats() { seconds = bytes_sent = 0, messages = calls = 0; }

 protected:
  ProcessGroup& g_;
};

class FlatAllToAll : public AllToAll {
 public:
  explicit FlatAllToAll(ProcessGroup& group) : AllToAll(group) {}
  void exchange(const float* send, const std::vector<int>& send_counts, float* recv,
                const std::vector<int>& recv_counts) override;
};

// The group of W = N x G ranks (rank = n * G + g) is split into `intra` (the G ranks of a node)
// and `inter` (the N ranks sharing a local index). Stage 1 exchanges inside the node, stage 2
// between nodes, with layout transforms around them.
class HierarchicalAllToAll : public AllToAll {
 public:
  HierarchicalAllToAll(ProcessGroup& group, ProcessGroup& intra, ProcessGroup& inter);
  void exchange(const float* send, const std::vector<int>& send_counts, float* recv,
                const std::vector<int>& recv_counts) override;

 private:
  ProcessGroup &intra_, &inter_;
  int N_, G_;
  std::vector<int> node_counts_;  // [G][W]: send counts of every rank on this node
  std::vector<int64_t> send_off_, mid_off_;
  Buffer stage_a_, stage_b_;  // on the group's payload device
  std::vector<int> intra_send_, intra_recv_, inter_send_, inter_recv_;
};

std::unique_ptr<AllToAll> make_all_to_all(const std::string& kind, ProcessGroup& group,
                                          ProcessGroup& intra, ProcessGroup& inter);

}  // namespace mt
