// Flat and hierarchical all-to-all.
#include "comm/all_to_all.hpp"

#include <algorithm>
#include <chrono>
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
  intra_send_.resize(G_);
  intra_recv_.resize(G_);
  inter_send_.resize(N_);
  inter_recv_.resize(N_);
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
  const int W = g_.size(), me = intra_.rank();
  // C[g_src][dst]: what node-mate g_src sends rank dst in this direction (from the plan).
  auto C = [&](int g_src, int dst) {
    return plan.node_counts[size_t(g_src) * 2 * W + (back ? W : 0) + dst];
  };
  offsets_of(send_counts, send_off_);
  const std::vector<int64_t>& send_off = send_off_;

  // (1) [n_dst][g_dst] -> [g_dst][n_dst], and the intra-node counts.
  const int64_t total_send = send_off[W];
  stage_a_.reserve(total_send);
  int64_t pos = 0;
  for (int gd = 0; gd < G_; ++gd) {
    int64_t block = 0;
    for (int nd = 0; nd < N_; ++nd) {
      const int dst = nd * G_ + gd;
      copy_floats(stage_a_.data() + pos, send + send_off[dst], send_counts[dst], g_.device());
      pos += send_counts[dst];
      block += send_counts[dst];
    }
    intra_send_[gd] = int(block);
  }
  int64_t total_mid = 0;
  for (int gs = 0; gs < G_; ++gs) {
    int64_t block = 0;
    for (int nd = 0; nd < N_; ++nd) block += C(gs, nd * G_ + me);
    intra_recv_[gs] = int(block);
    total_mid += block;
  }
  // (2) Inside the node: rank (n, g) now holds, from every g_src, the chunks for (n_dst, g).
  stage_b_.reserve(total_mid);
  intra_.all_to_all_v(stage_a_.data(), intra_send_, stage_b_.data(), intra_recv_);

  // (3) [g_src][n_dst] -> [n_dst][g_src], and the inter-node counts.
  std::vector<int64_t>& mid_off = mid_off_;  // chunk (g_src, n_dst) in stage_b_
  mid_off.assign(size_t(G_) * N_ + 1, 0);
  for (int gs = 0, i = 0; gs < G_; ++gs)
    for (int nd = 0; nd < N_; ++nd, ++i) mid_off[i + 1] = mid_off[i] + C(gs, nd * G_ + me);
  stage_a_.reserve(total_mid);  // stage 1 is done with it
  pos = 0;
  for (int nd = 0; nd < N_; ++nd) {
    int64_t block = 0;
    for (int gs = 0; gs < G_; ++gs) {
      const int n = C(gs, nd * G_ + me);
      copy_floats(stage_a_.data() + pos, stage_b_.data() + mid_off[gs * N_ + nd], n, g_.device());
      pos += n;
      block += n;
    }
    inter_send_[nd] = int(block);
  }
  for (int ns = 0; ns < N_; ++ns) {
    int64_t block = 0;
    for (int gs = 0; gs < G_; ++gs) block += recv_counts[ns * G_ + gs];
    inter_recv_[ns] = int(block);
  }
  // (4) Between nodes: blocks arrive as [n_src][g_src], the global source order.
  inter_.all_to_all_v(stage_a_.data(), inter_send_, recv, inter_recv_);

  seconds += since(t0);
  for (int p = 0; p < G_; ++p)
    if (p != me) bytes_sent += 4.0 * intra_send_[p], messages += intra_send_[p] > 0;
  for (int p = 0; p < N_; ++p)
    if (p != inter_.rank()) bytes_sent += 4.0 * inter_send_[p], messages += inter_send_[p] > 0;
  ++calls;
}

std::unique_ptr<AllToAll> make_all_to_all(const std::string& kind, ProcessGroup& group,
                                          ProcessGroup& intra, ProcessGroup& inter) {
  if (kind == "flat") return std::make_unique<FlatAllToAll>(group);
  if (kind == "hierarchical") return std::make_unique<HierarchicalAllToAll>(group, intra, inter);
  fail("dist.a2a = '{}' (flat or hierarchical)", kind);
}

}  // namespace mt
