// moetrain bench a2a | moe: communication and MoE-layer throughput, side by side in one run.
//   a2a (under mpirun): one dispatch + combine pair of exchanges with the byte counts of the
//       config's MoE layer (uniform routing) and of 4x and 16x as many tokens, as raw
//       MPI_Alltoallv, our flat exchange (with the count exchange and the plan before each
//       dispatch) and our hierarchical exchange.
//   moe (one rank, CPU or GPU): the MoE layer's forward + backward against a dense FFN of the
//       same active FLOPs (top-1, expert width = FFN width) on the same tokens, and the FLOP rate
//       of its expert GEMMs inside the layer against the same GEMMs run alone (raw cuBLAS or
//       oneDNN on the same shapes).
#include <fmt/format.h>
#include <mpi.h>

#include <algorithm>
#include <chrono>

#include "cli/bench_common.hpp"
#include "comm/all_to_all.hpp"
#include "gates/hash.hpp"
#include "model/ffn.hpp"
#include "model/gate_registry.hpp"
#include "model/moe.hpp"
#include "tensor/error.hpp"
#include "tensor/ops.hpp"
#include "tensor/rng.hpp"
#include "train/runtime.hpp"

namespace mt::cli {

int bench_a2a(const Config& cfg, int reps) {
  Runtime rt = make_runtime(cfg);
  const MoeConfig& m = cfg.model.moe;
  MT_CHECK(m.num_experts > 0, "bench a2a: the config has no MoE layer (moe.experts = 0)");
  const int W = rt.groups.ep_size();
  const int k = gate_traits(m).choices;
  const int64_t base = local_batch(cfg, rt) * cfg.model.seq_len * k;
  MPI_Comm raw;
  MPI_Comm_dup(rt.groups.ep->comm(), &raw);
  FlatAllToAll flat(*rt.groups.ep);
  HierarchicalAllToAll hier(*rt.groups.ep, *rt.groups.ep_intra, *rt.groups.ep_inter);
  if (rt.root()) {
    const int N = rt.groups.ep_inter->size(), G = rt.groups.ep_intra->size();
    fmt::print(
        "a2a: {}; hierarchical as {} nodes x {} ranks; messages per rank per exchange: "
        "flat {}, hierarchical {}; between nodes: flat {}, hierarchical {}\n",
        rt.describe(), N, G, W - 1,
        (std::min(N - 1, HierarchicalAllToAll::kSlices) + 1) * (G - 1) + N - 1, W - G, N - 1);
    fmt::print("{:>14}{:>10}{:>12}{:>14}{:>12}{:>14}{:>12}{:>10}{:>10}\n", "tokens/rank",
               "MiB/peer", "raw ms", "raw GB/s", "flat/raw", "hier GB/s", "hier/raw", "flat ms",
               "hier ms");
  }
  // From 1/8 to 32 times the config's tokens per rank (16 KiB to 4 MiB per peer on the MoE demo
  // at 4 ranks).
  for (double scale : {0.125, 0.5, 1.0, 4.0, 16.0, 32.0}) {
    const int64_t tokens = int64_t(double(base) * scale);
    const int per_peer = int(tokens / W * cfg.model.d_model);  // floats to every peer
    std::vector<int> counts(W, per_peer), row_counts(size_t(W) * (m.num_experts / W), 1);
    std::vector<float> send(size_t(per_peer) * W, 1.0f), recv(send.size()), back(send.size());
    std::vector<int> displ(W), recv_rows(row_counts.size());
    for (int p = 0; p < W; ++p) displ[p] = p * per_peer;
    auto pair_raw = [&] {
      MPI_Alltoallv(send.data(), counts.data(), displ.data(), MPI_FLOAT, recv.data(), counts.data(),
                    displ.data(), MPI_FLOAT, raw);
      MPI_Alltoallv(recv.data(), counts.data(), displ.data(), MPI_FLOAT, back.data(), counts.data(),
                    displ.data(), MPI_FLOAT, raw);
    };
    // As the MoE layer does it: the per-expert row counts first, then dispatch and combine.
    auto pair_ours = [&](AllToAll& a2a) {
      a2a.exchange_ints(row_counts.data(), recv_rows.data(), m.num_experts / W);
      const A2aPlan plan = a2a.plan(counts, counts);
      a2a.exchange(plan, send.data(), recv.data(), false);
      a2a.exchange(plan, recv.data(), back.data(), true);
    };
    // Interleaved repetitions, so that machine noise hits all three alike; median per variant.
    std::vector<double> t_raw, t_flat, t_hier;
    auto timed = [&](auto&& fn, std::vector<double>& out) {
      MPI_Barrier(raw);
      const auto t0 = std::chrono::steady_clock::now();
      fn();
      double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      MPI_Allreduce(MPI_IN_PLACE, &sec, 1, MPI_DOUBLE, MPI_MAX, raw);
      out.push_back(sec);
    };
    for (int r = 0; r < reps + 2; ++r) {
      timed(pair_raw, t_raw);
      timed([&] { pair_ours(flat); }, t_flat);
      timed([&] { pair_ours(hier); }, t_hier);
    }
    auto median = [](std::vector<double> v) {
      v.erase(v.begin(), v.begin() + 2);  // warm-up
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    const double bytes = 2.0 * 4.0 * per_peer * (W - 1);  // sent to other ranks per rank
    const double raw_s = median(t_raw), flat_s = median(t_flat), hier_s = median(t_hier);
    if (rt.root())
      fmt::print("{:>14}{:>10.2f}{:>12.3f}{:>14.2f}{:>12.2f}{:>14.2f}{:>12.2f}{:>10.3f}{:>10.3f}\n",
                 tokens, 4.0 * per_peer / (1 << 20), raw_s * 1e3, bytes / raw_s / 1e9,
                 raw_s / flat_s, bytes / hier_s / 1e9, raw_s / hier_s, flat_s * 1e3, hier_s * 1e3);
  }
  MPI_Comm_free(&raw);
  return 0;
}

// The experts' GEMMs of one forward + backward, run alone: per local expert with r rows,
// fc1 [r,d]x[d,f], fc2 [r,f]x[f,d], and in the backward dW1, dx, dW2 and dact. 12 d f r FLOPs.
// fc2 and dW2 read the hidden activation in the dtype the layer stores it in
// (ops::product_input_dtype).
double raw_expert_gemms_s(Device device, const std::vector<int64_t>& rows, int64_t d, int64_t f,
                          int reps) {
  int64_t most = 1;
  for (size_t e = 0; e + 1 < rows.size(); ++e) most = std::max(most, rows[e + 1] - rows[e]);
  Buffer x(device, most * d), h(device, most * f), act(device, most * f), w1(device, d * f),
      w2(device, f * d), y(device, most * d);
  const DType act_type = ops::product_input_dtype(device);
  return best_seconds(reps, [&] {
    for (size_t e = 0; e + 1 < rows.size(); ++e) {
      const int64_t r = rows[e + 1] - rows[e];
      if (r == 0) continue;
      const Tensor tx = x.view({r, d}), th = h.view({r, f}), tw1 = w1.view({d, f}),
                   tw2 = w2.view({f, d}), ty = y.view({r, d}), tact = act.view({r, f}, 0, act_type);
      ops::matmul(tx, false, tw1, false, th);         // fc1
      ops::matmul(tact, false, tw2, false, ty);       // fc2
      ops::matmul(tx, true, th, false, tw1, 1, 1);    // dW1 += x^T dpre
      ops::matmul(th, false, tw1, true, tx);          // dx = dpre W1^T
      ops::matmul(tact, true, ty, false, tw2, 1, 1);  // dW2 += act^T dy
      ops::matmul(ty, false, tw2, true, th);          // dact = dy W2^T
    }
    wait_for(device);
  });
}

int bench_moe(const Config& cfg, Device device, int reps) {
  Runtime rt = make_runtime(cfg, device);
  MT_CHECK(rt.ranks() == 1, "bench moe runs on one rank");
  const GptConfig& c = cfg.model;
  MoeConfig m = c.moe;
  MT_CHECK(m.num_experts > 0, "bench moe: the config has no MoE layer (moe.experts = 0)");
  const int64_t T = cfg.batch_size * c.seq_len, d = c.d_model, f = m.d_ff > 0 ? m.d_ff : c.d_ff;
  ParamRegistry reg;
  const MoeLayer moe(reg, "moe", d, f, m, 0, 1, 0.02f,
                     random_hash(c.vocab > 0 ? c.vocab : 4096, m.num_experts, cfg.seed));
  const Ffn ffn(reg, "ffn", d, f, 0.02f);
  reg.allocate(device);
  reg.initialize(cfg.seed);
  std::vector<float> x(T * d), dy(T * d);
  const Rng rng(cfg.seed, 11);
  for (int64_t i = 0; i < T * d; ++i) x[i] = rng.normal(i), dy[i] = rng.normal(i + T * d);
  std::vector<int32_t> ids(T);
  for (int64_t t = 0; t < T; ++t) ids[t] = int32_t(rng.below(1000000 + t, 4096));
  PassContext step{.a2a = rt.a2a.get()};
  step.route.seed = cfg.seed;
  step.route.token_ids = ids.data();
  step.route.group_tokens = m.group_sequences * c.seq_len;
  step.route.global_groups = T / step.route.group_tokens;
  step.route.global_tokens = T;
  Arena arena(device);
  MoeLayer::Cache mc;
  Ffn::Cache fc;
  Buffer bx(device, T * d), bdy(device, T * d);
  const Tensor tx = bx.view({T, d}), tdy = bdy.view({T, d});
  ops::copy(Tensor{x.data(), {T, d}}, tx);
  ops::copy(Tensor{dy.data(), {T, d}}, tdy);
  int64_t kept = 0;
  const double moe_s = best_seconds(reps, [&] {
    arena.reset();
    moe.forward(arena, tx, step, mc);
    moe.backward(arena, tdy, step, mc);
    wait_for(device);
    kept = T - mc.routing.dropped;
  });
  const double ffn_s = best_seconds(reps, [&] {
    arena.reset();
    ffn.forward(arena, tx, fc);
    ffn.backward(arena, tdy, fc);
    wait_for(device);
  });
  const double gemm_s = raw_expert_gemms_s(device, mc.experts.offsets, d, f, reps);
  const double expert_flops = 12.0 * double(d) * double(f) * double(mc.experts.offsets.back());
  fmt::print(
      "{{\"bench\": \"moe\", \"device\": \"{}\", \"precision\": \"{}\", \"tokens\": {}, "
      "\"d\": {}, \"f\": {}, \"experts\": {}, \"gate\": \"{}\", \"kept_choices\": {}, "
      "\"moe_s\": {:.6f}, \"ffn_s\": {:.6f}, \"moe_tokens_per_s\": {:.1f}, "
      "\"ffn_tokens_per_s\": {:.1f}, \"ratio\": {:.3f}, \"expert_gemm_tflops_in_layer\": {:.3f}, "
      "\"expert_gemm_tflops_raw\": {:.3f}, \"layer_vs_raw_gemms\": {:.3f}}}\n",
      device_name(device), cfg.precision, T, d, f, m.num_experts, m.gate, kept, moe_s, ffn_s,
      T / moe_s, T / ffn_s, ffn_s / moe_s, expert_flops / moe_s / 1e12,
      expert_flops / gemm_s / 1e12, gemm_s / moe_s);
  return 0;
}

}  // namespace mt::cli
