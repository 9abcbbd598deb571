// Flat and hierarchical all-to-all.
#include "comm/all_to_all.hpp"

#include <algorithm>
#include <chrono>
#include <climits>
#include <numeric>

#include "tensor/device.hpp"
#include "tensor/error.hpp"
#include "tensor/ops.hpp"

namespace mt {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}
// n floats from src to dst, both on device d.
void copy_floats(float* dst, const float* src, int64_t n, Device d) {
  if (n > 0)
    ops::copy(Tensor{const_cast<float*>(src), {n}, DType::F32, d}, Tensor{dst, {n}, DType::F32, d});
}
// Offsets (prefix sums) of a count vector, into a reused buffer.
void offsets_of(const std::vector<int>& counts, std::vector<int64_t>& o) {
  o.assign(counts.size() + 1, 0);
  for (size_t i = 0; i < counts.size(); ++i) o[i + 1] = o[i] + counts[i];
}
}  // namespace

A2aPlan AllToAll::plan(std::vector<int> send_counts, std::vector<int> recv_counts) {
  return {std::move(send_counts), std::move(recv_counts), {}};
}

void AllToAll::exchange_ints(const int* send, int* recv, int per_peer) {
  g_.all_to_all_ints(send, recv, per_peer);
  ++calls;
}

void FlatAllToAll::exchange(const A2aPlan& plan, const float* from, float* to, bool back) {
  const std::vector<int>& out = back ? plan.recv_counts : plan.send_counts;
  const std::vector<int>& in = back ? plan.send_counts : plan.recv_counts;
  wait_for(g_.device());  // on a GPU, the work queued before the exchange is not its time
  const auto t0 = Clock::now();
  g_.all_to_all_v(from, out, to, in);
  seconds += since(t0);
  for (int p = 0; p < g_.size(); ++p)
    if (p != g_.rank()) bytes_sent += 4.0 * out[p], messages += out[p] > 0;
  ++calls;
}

HierarchicalAllToAll::HierarchicalAllToAll(ProcessGroup& group, ProcessGroup& intra,
                                           ProcessGroup& inter)
    : AllToAll(group), intra_(intra), inter_(inter), N_(inter.size()), G_(intra.size()) {
  MT_CHECK(N_ * G_ == g_.size() && g_.rank() == inter.rank() * G_ + intra.rank(),
           "hierarchical all-to-all: the group of {} ranks is not {} nodes x {} ranks in "
           "node-major order (rank {} is node {}, local {})",
           g_.size(), N_, G_, g_.rank(), inter.rank(), intra.rank());
  stage_a_ = Buffer(g_.device(), 0);
  stage_b_ = Buffer(g_.device(), 0);
  forward_ = Buffer(g_.device(), 0);
  intra_send_.resize(G_);
  intra_recv_.resize(G_);
  inter_send_.assign(N_, 0);
  inter_recv_.assign(N_, 0);
  inter_send_off_.assign(N_, 0);
  inter_recv_off_.assign(N_, 0);
}

A2aPlan HierarchicalAllToAll::plan(std::vector<int> send_counts, std::vector<int> recv_counts) {
  const int W = g_.size();
  std::vector<int> mine(send_counts);
  mine.insert(mine.end(), recv_counts.begin(), recv_counts.end());
  A2aPlan p = AllToAll::plan(std::move(send_counts), std::move(recv_counts));
  p.node_counts.resize(size_t(G_) * 2 * W);
  intra_.all_gather_ints(mine.data(), p.node_counts.data(), 2 * W);
  return p;
}

void HierarchicalAllToAll::exchange_ints(const int* send, int* recv, int per_peer) {
  // Every node-mate's ints (one gather inside the node), then to the rank of this local index on
  // each node the ints of all node-mates for it; they arrive in source-rank order.
  const int W = g_.size(), me = intra_.rank();
  const size_t k = size_t(per_peer);
  ints_node_.resize(size_t(G_) * W * k);
  intra_.all_gather_ints(send, ints_node_.data(), int(W * k));
  ints_out_.resize(size_t(N_) * G_ * k);
  for (int nd = 0; nd < N_; ++nd)
    for (int gs = 0; gs < G_; ++gs)
      std::copy_n(ints_node_.data() + (size_t(gs) * W + nd * G_ + me) * k, k,
                  ints_out_.data() + (size_t(nd) * G_ + gs) * k);
  inter_.all_to_all_ints(ints_out_.data(), recv, int(G_ * k));
  ++calls;
}

void HierarchicalAllToAll::exchange(const A2aPlan& plan, const float* send, float* recv,
                                    bool back) {
  const std::vector<int>& send_counts = back ? plan.recv_counts : plan.send_counts;
  const std::vector<int>& recv_counts = back ? plan.send_counts : plan.recv_counts;
  wait_for(g_.device());  // on a GPU, the work queued before the exchange is not its time
  const auto t0 = Clock::now();
  const int W = g_.size(), me = intra_.rank(), node = inter_.rank();
  const Device dev = g_.device();
  // C[g_src][dst]: what node-mate g_src sends rank dst in this direction (from the plan).
  auto C = [&](int g_src, int dst) {
    return plan.node_counts[size_t(g_src) * 2 * W + (back ? W : 0) + dst];
  };
  auto node_at = [&](int o) { return (node + o) % N_; };  // the node o steps on along the ring
  offsets_of(send_counts, send_off_);
  offsets_of(recv_counts, recv_off_);
  // What this rank forwards to each other node: every node-mate's chunks for (that node, me), in
  // node-mate order, the nodes in ring order from this one; it stays in forward_ until the end.
  int64_t total_forward = 0;
  for (int o = 1; o < N_; ++o)
    for (int gs = 0; gs < G_; ++gs) total_forward += C(gs, node_at(o) * G_ + me);
  MT_CHECK(total_forward <= INT_MAX && recv_off_.back() <= INT_MAX,
           "hierarchical all-to-all: {} floats exceed MPI's int range",
           std::max(total_forward, recv_off_.back()));
  forward_.reserve(total_forward);
  std::fill(inter_send_.begin(), inter_send_.end(), 0);
  std::fill(inter_recv_.begin(), inter_recv_.end(), 0);
  auto count_sent = [&](const std::vector<int>& counts, int self) {
    for (int p = 0; p < int(counts.size()); ++p)
      if (p != self) bytes_sent += 4.0 * counts[p], messages += counts[p] > 0;
  };
  // The other nodes in at most kSlices slices of consecutive ring steps; a slice of several
  // nodes is packed (stage_a_) and unpacked (stage_b_), each staging buffer sized once for the
  // largest slice, as a GPU may still be reading the previous slice's.
  const int per_slice = N_ > 1 ? (N_ - 1 + kSlices - 1) / kSlices : 1;
  if (per_slice > 1) {
    int64_t pack = 0, mid = 0;
    for (int first = 1; first < N_; first += per_slice) {
      int64_t p = 0, m = 0;
      for (int o = first; o < std::min(N_, first + per_slice); ++o) {
        p += send_off_[size_t(node_at(o) + 1) * G_] - send_off_[size_t(node_at(o)) * G_];
        for (int gs = 0; gs < G_; ++gs) m += C(gs, node_at(o) * G_ + me);
      }
      pack = std::max(pack, p), mid = std::max(mid, m);
    }
    stage_a_.reserve(pack);
    stage_b_.reserve(mid);
  }
  int64_t forwarded = 0;
  for (int first = 1; first < N_; first += per_slice) {
    // The slice's nodes: ring steps [first, last).
    const int last = std::min(N_, first + per_slice);
    const bool one = last - first == 1;
    // (1) To each node-mate g_dst its chunks for the slice's nodes. One node's chunks for its
    // ranks are contiguous in send, so a slice of one node is read where it is.
    const float* out = one ? send + send_off_[size_t(node_at(first)) * G_] : stage_a_.data();
    int64_t pos = 0;
    for (int gd = 0; gd < G_; ++gd) {
      intra_send_[gd] = 0;
      for (int o = first; o < last; ++o) {
        const int dst = node_at(o) * G_ + gd;
        if (!one) copy_floats(stage_a_.data() + pos, send + send_off_[dst], send_counts[dst], dev);
        pos += send_counts[dst];
        intra_send_[gd] += send_counts[dst];
      }
    }
    for (int gs = 0; gs < G_; ++gs) {
      intra_recv_[gs] = 0;
      for (int o = first; o < last; ++o) intra_recv_[gs] += C(gs, node_at(o) * G_ + me);
    }
    // (2) Inside the node: from every node-mate its chunks for (the slice's nodes, me), as
    // [g_src][node]; for one node that is already the block it forwards.
    float* mid = one ? forward_.data() + forwarded : stage_b_.data();
    intra_.all_to_all_v(out, intra_send_, mid, intra_recv_);
    count_sent(intra_send_, me);
    // (3) [g_src][node] -> [node][g_src] into forward_, and this slice's counts between nodes.
    const int S = last - first;
    mid_off_.assign(size_t(G_) * S + 1, 0);  // chunk (g_src, o) in stage_b_
    for (int gs = 0, i = 0; gs < G_; ++gs)
      for (int o = first; o < last; ++o, ++i)
        mid_off_[i + 1] = mid_off_[i] + C(gs, node_at(o) * G_ + me);
    for (int o = first; o < last; ++o) {
      const int nd = node_at(o);
      inter_send_off_[nd] = int(forwarded);
      for (int gs = 0; gs < G_; ++gs) {
        const int n = C(gs, nd * G_ + me);
        if (!one)
          copy_floats(forward_.data() + forwarded, stage_b_.data() + mid_off_[gs * S + o - first],
                      n, dev);
        forwarded += n;
        inter_send_[nd] += n;
      }
      // From the node o steps back, the block for this rank: its ranks' chunks, in source order.
      const int ns = (node - o + N_) % N_;
      inter_recv_off_[ns] = int(recv_off_[size_t(ns) * G_]);
      for (int gs = 0; gs < G_; ++gs) inter_recv_[ns] += recv_counts[ns * G_ + gs];
    }
    // (4) Between nodes, left in flight while the next slices and this node's own rows go
    // through the node.
    inter_.start_all_to_all_v(forward_.data(), inter_send_, inter_send_off_, recv, inter_recv_,
                              inter_recv_off_);
    const int64_t before = messages;
    count_sent(inter_send_, node);
    node_messages += messages - before;
    for (int o = first; o < last; ++o) inter_send_[node_at(o)] = 0;
    for (int o = first; o < last; ++o) inter_recv_[(node - o + N_) % N_] = 0;
  }
  // (5) This node's own rows, inside the node, straight from send into recv.
  for (int g = 0; g < G_; ++g) {
    intra_send_[g] = send_counts[node * G_ + g];
    intra_recv_[g] = recv_counts[node * G_ + g];
  }
  intra_.all_to_all_v(send + send_off_[size_t(node) * G_], intra_send_,
                      recv + recv_off_[size_t(node) * G_], intra_recv_);
  count_sent(intra_send_, me);
  inter_.finish_all_to_all();
  seconds += since(t0);
  ++calls;
}

std::unique_ptr<AllToAll> make_all_to_all(const std::string& kind, ProcessGroup& group,
                                          ProcessGroup& intra, ProcessGroup& inter) {
  if (kind == "flat") return std::make_unique<FlatAllToAll>(group);
  if (kind == "hierarchical") return std::make_unique<HierarchicalAllToAll>(group, intra, inter);
  fail("dist.a2a = '{}' (flat or hierarchical)", kind);
}

}  // namespace mt
