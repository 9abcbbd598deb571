// MoE layer: forward and backward side by side.
#include "model/moe.hpp"

#include "model/gate_registry.hpp"
#include "tensor/error.hpp"
#include "tensor/ops.hpp"

namespace mt {

MoeLayer::MoeLayer(ParamRegistry& reg, const std::string& prefix, int64_t d, int64_t f,
                   const MoeConfig& c, int ep_rank, int ep_size, float proj_std,
                   const std::vector<int32_t>& hash_table)
    : cfg_(c),
      ep_size_(ep_size),
      local_(c.num_experts / ep_size),
      gate_(make_gate({reg, prefix + "/gate", d, c, hash_table})),
      experts_(reg, prefix + "/experts", c.num_experts, ep_rank * local_, local_, d, f, proj_std) {
  MT_CHECK(c.num_experts % ep_size == 0, "moe.experts = {} is not divisible by ep_size = {}",
           c.num_experts, ep_size);
}

void MoeLayer::exchange(const PassContext& pass, const Cache& c, const Tensor& from,
                        const Tensor& to, bool back) {
  if (c.on_rank)
    ops::copy(from, to);  // every row stays on this rank
  else
    pass.a2a->exchange(c.plan, from.f32(), to.f32(), back);
}

void MoeLayer::permute(const Tensor& in, const Tensor& out, const Cache& c, bool to_expert_major) {
  for (size_t i = 0; i < c.recv_rows.size(); ++i) {
    const int64_t from = to_expert_major ? c.peer_major[i] : c.expert_major[i];
    const int64_t to = to_expert_major ? c.expert_major[i] : c.peer_major[i];
    if (c.recv_rows[i] > 0)
      ops::copy(in.rows(from, from + c.recv_rows[i]), out.rows(to, to + c.recv_rows[i]));
  }
}

Tensor MoeLayer::forward(Arena& arena, const Tensor& x, const PassContext& pass, Cache& c) const {
  const bool drop = pass.drops(pass.route.layer);
  MT_CHECK(drop || (pass.a2a && pass.a2a->size() == ep_size_),
           "moe: no token exchange over {} ranks", ep_size_);
  const int64_t T = x.size(0), d = x.size(1), E = cfg_.num_experts;
  c.on_rank = drop;
  c.skipped = drop && cfg_.gd_mode == "gate_expert_drop";
  if (c.skipped) {
    c.routing = Routing{};
    c.routing.load.assign(E, 0);
    return arena.zeros({T, d});
  }
  c.routing = drop ? gate_->route_local(arena, x, pass.route, experts_.first(), local_,
                                        cfg_.gd_weight == "gate")
                   : gate_->route(arena, x, pass.route);
  const int k = c.routing.k;
  int32_t* expert = c.routing.expert.i32();     // routing decisions live on the host
  if (const uint8_t* alive = pass.route.alive)  // an exited token is sent to no expert
    for (int64_t i = 0; i < T * k; ++i)
      if (!alive[i / k]) expert[i] = -1;
  // Bucket the kept (token, choice) pairs by expert, in token order within an expert.
  c.send_rows.assign(E, 0);
  for (int64_t i = 0; i < T * k; ++i)
    if (expert[i] >= 0) ++c.send_rows[expert[i]];
  std::vector<int64_t>& start = c.bucket;
  start.assign(E + 1, 0);
  for (int64_t e = 0; e < E; ++e) start[e + 1] = start[e] + c.send_rows[e];
  const int64_t n = start[E];
  Tensor source = arena.host().alloc({n}, DType::I32);  // assignment -> token row
  c.slot.assign(T * k, -1);
  for (int64_t i = 0; i < T * k; ++i)
    if (expert[i] >= 0) {
      const int64_t a = start[expert[i]]++;
      source.i32()[a] = int32_t(i / k);
      c.slot[i] = int32_t(a);
    }
  // The combine's indices and weights where the rows are (a view of c.slot on the CPU).
  c.slots = arena.to_device(Tensor{c.slot.data(), {T, k}, DType::I32, Device::CPU});
  c.weights = arena.to_device(c.routing.weight);
  // Counts first (rows per peer and local expert), then the tokens.
  c.recv_rows.assign(E, 0);
  if (c.on_rank)
    c.recv_rows = c.send_rows;  // only this rank's experts have rows
  else
    pass.a2a->exchange_ints(c.send_rows.data(), c.recv_rows.data(), local_);
  std::vector<int> send_counts(ep_size_, 0), recv_counts(ep_size_, 0);
  int64_t received = 0;
  for (int p = 0; p < ep_size_; ++p)
    for (int e = 0; e < local_; ++e) {
      send_counts[p] += int(c.send_rows[p * local_ + e] * d);
      recv_counts[p] += int(c.recv_rows[p * local_ + e] * d);
      received += c.recv_rows[p * local_ + e];
    }
  if (!c.on_rank) c.plan = pass.a2a->plan(std::move(send_counts), std::move(recv_counts));
  Tensor send = arena.alloc({n, d});
  ops::gather_rows(x, arena.to_device(source), send);
  Tensor recv = arena.alloc({received, d});
  exchange(pass, c, send, recv, false);
  // Local experts on contiguous rows: block offsets in both orders, then each expert's rows.
  c.peer_major.resize(E);
  c.expert_major.resize(E);
  c.expert_rows.assign(local_ + 1, 0);
  for (int64_t i = 0, at = 0; i < E; ++i) c.peer_major[i] = at, at += c.recv_rows[i];
  for (int64_t e = 0, at = 0; e < local_; ++e) {
    for (int p = 0; p < ep_size_; ++p)
      c.expert_major[p * local_ + e] = at, at += c.recv_rows[p * local_ + e];
    c.expert_rows[e + 1] = at;
  }
  Tensor in = arena.alloc({received, d});
  permute(recv, in, c, true);
  Tensor out = experts_.forward(arena, in, c.expert_rows, c.experts);
  permute(out, recv, c, false);
  c.back = arena.alloc({n, d});
  exchange(pass, c, recv, c.back, true);
  // Weighted combine, each token's choices summed in order.
  Tensor y = arena.zeros({T, d});
  ops::combine_rows(c.back, c.slots, c.weights, y);
  return y;
}

Tensor MoeLayer::backward(Arena& arena, const Tensor& dy, const PassContext& pass,
                          const Cache& c) const {
  const int64_t T = dy.size(0), d = dy.size(1);
  if (c.skipped) return arena.zeros({T, d});
  const int64_t n = c.back.size(0);
  Tensor dweight = arena.zeros(c.slots.shape);
  Tensor dback = arena.alloc({n, d});
  ops::combine_rows_backward(dy, c.back, c.slots, c.weights, dback, dweight);
  const int64_t received = c.expert_rows.back();
  Tensor recv = arena.alloc({received, d});
  exchange(pass, c, dback, recv, false);
  Tensor dout = arena.alloc({received, d});
  permute(recv, dout, c, true);
  Tensor din = experts_.backward(arena, dout, c.experts);
  permute(din, recv, c, false);
  Tensor dsend = arena.alloc({n, d});
  exchange(pass, c, recv, dsend, true);
  Tensor dx = arena.zeros({T, d});
  ops::combine_rows(dsend, c.slots, Tensor{}, dx);  // each choice's gradient, weight 1
  gate_->backward(arena, c.routing, arena.to_host(dweight), dx);
  return dx;
}

}  // namespace mt
