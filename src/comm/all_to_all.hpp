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

// The counts of one MoE layer's exchanges, made once (AllToAll::plan) and used by all four of
// them: out and back, in the forward and in the backward. Counts are floats per peer.
struct A2aPlan {
  std::vector<int> send_counts, recv_counts;  // what this rank sends out to, receives from, p
  std::vector<int> node_counts;  // hierarchical: [G][2W], every node-mate's send, then recv, counts
};

class AllToAll {
 public:
  explicit AllToAll(ProcessGroup& group) : g_(group) {}
  virtual ~AllToAll() = default;
  // Collective over the group: the plan for exchanges with these counts (recv_counts as
  // exchange_ints delivered them).
  virtual A2aPlan plan(std::vector<int> send_counts, std::vector<int> recv_counts);
  // Out: `from` holds send_counts[p] floats for every peer p and `to` receives recv_counts[p]
  // from each. Back (the reverse): from holds recv_counts, to receives send_counts.
  virtual void exchange(const A2aPlan& plan, const float* from, float* to, bool back) = 0;
  // Metadata: `per_peer` ints to every peer of the group, in the exchange's own pattern.
  virtual void exchange_ints(const int* send, int* recv, int per_peer);
  int size() const { return g_.size(); }

  double seconds = 0;         // time inside exchanges since the last reset_stats()
  double bytes_sent = 0;      // payload bytes this rank sent to other ranks
  int64_t messages = 0;       // point-to-point messages this rank sent to other ranks
  int64_t node_messages = 0;  // of them, those to other nodes (counted where the nodes are known)
  int64_t calls = 0;          // exchanges of either kind (counts or floats)
  void reset_stats() { seconds = bytes_sent = 0, messages = node_messages = calls = 0; }

 protected:
  ProcessGroup& g_;
};

class FlatAllToAll : public AllToAll {
 public:
  explicit FlatAllToAll(ProcessGroup& group) : AllToAll(group) {}
  void exchange(const A2aPlan& plan, const float* from, float* to, bool back) override;
};

// The group of W = N x G ranks (rank = n * G + g) is split into `intra` (the G ranks of a node)
// and `inter` (the N ranks sharing a local index). Rows for another node first go, inside the
// node, to the node-mate of the destination's local index, which forwards them to that node in
// one message: N - 1 messages between nodes a rank, not W - G. The other nodes are taken in at
// most kSlices slices along the ring; each slice's exchange between nodes stays in flight while
// the next slices, and then the rows for this node's own ranks, go through the node, so the two
// stages overlap (on MPI; on a GPU the stream orders them). The plan learns every node-mate's
// counts (one gather inside the node per layer); the metadata takes the same two stages, so no
// exchange of this kind sends a message from every rank to every other.
class HierarchicalAllToAll : public AllToAll {
 public:
  static constexpr int kSlices = 2;
  HierarchicalAllToAll(ProcessGroup& group, ProcessGroup& intra, ProcessGroup& inter);
  A2aPlan plan(std::vector<int> send_counts, std::vector<int> recv_counts) override;
  void exchange(const A2aPlan& plan, const float* from, float* to, bool back) override;
  void exchange_ints(const int* send, int* recv, int per_peer) override;

 private:
  ProcessGroup &intra_, &inter_;
  int N_, G_;
  std::vector<int64_t> send_off_, recv_off_, mid_off_;
  std::vector<int> ints_node_, ints_out_;  // exchange_ints' staging
  Buffer stage_a_, stage_b_;               // a slice of several nodes, packed and unpacked
  Buffer forward_;                         // what goes to the other nodes, until it has gone
  std::vector<int> intra_send_, intra_recv_, inter_send_, inter_recv_, inter_send_off_,
      inter_recv_off_;
};

std::unique_ptr<AllToAll> make_all_to_all(const std::string& kind, ProcessGroup& group,
                                          ProcessGroup& intra, ProcessGroup& inter);

}  // namespace mt
