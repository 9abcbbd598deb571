// The MoE layer and its gates on one rank: gradients against finite differences, capacity
// against a hand computation, hash routing as a pure function of the token id.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "comm/all_to_all.hpp"
#include "comm/mpi_group.hpp"
#include "comm/topology.hpp"
#include "gates/comet.hpp"
#include "gates/dselect_k.hpp"
#include "gates/evomoe.hpp"
#include "gates/hash.hpp"
#include "gates/permutation.hpp"
#include "gates/permuted.hpp"
#include "gates/thor.hpp"
#include "gates/topk.hpp"
#include "gradcheck.hpp"
#include "model/flops.hpp"
#include "model/gpt.hpp"
#include "model/loss.hpp"
#include "model/moe.hpp"
#include "tensor/ops/sgemm.hpp"
#include "tensor/rng.hpp"
#include "train/evomoe.hpp"

namespace mt {
namespace {

using test::check_gradient;
using test::project;
using test::randn;

RouteContext context(int64_t T, int64_t group) {
  RouteContext c;
  c.seed = 3;
  c.step = 7;
  c.group_tokens = group;
  c.global_groups = T / group;
  c.global_tokens = T;
  return c;
}

// L = <y, R> + the gates' aux and z losses, against finite differences of every input and
// parameter. Large weights keep routing decisions away from ties under the small perturbation.
// `adjust` may change the parameters after their random draw; `atol` is the absolute tolerance.
void check_moe(const MoeConfig& cfg, int64_t T, int64_t group, int phase = 0, float tau = 1.0f,
               bool training = true, int64_t step_index = 7,
               const std::function<void(ParamRegistry&)>& adjust = {}, double atol = 3e-4) {
  const int64_t d = 6, f = 10;
  ParamRegistry reg;
  MpiGroup self(MPI_COMM_SELF, "self");
  FlatAllToAll a2a(self);
  std::vector<int32_t> ids(T);
  for (int64_t t = 0; t < T; ++t) ids[t] = int32_t((t * 5) % 11);
  const MoeLayer layer(reg, "moe", d, f, cfg, 0, 1, 0.3f, random_hash(11, cfg.num_experts, 1));
  reg.allocate();
  reg.initialize(5);
  randn(reg.values(), reg.total_elements(), "moe-params", 0.5f);
  if (adjust) adjust(reg);
  std::vector<float> x(T * d), r(T * d);
  randn(x.data(), T * d, "moe-x");
  randn(r.data(), T * d, "moe-r");
  PassContext step{.a2a = &a2a, .route = context(T, group)};
  step.route.token_ids = ids.data();
  step.route.phase = phase;
  step.route.tau = tau;
  step.route.training = training;
  step.route.step = step_index;
  Arena arena;
  MoeLayer::Cache cache;
  auto loss = [&] {
    arena.reset();
    MoeLayer::Cache c;
    Tensor y = layer.forward(arena, Tensor{x.data(), {T, d}}, step, c);
    return project(y, r) + c.routing.aux + c.routing.z;
  };
  Tensor y = layer.forward(arena, Tensor{x.data(), {T, d}}, step, cache);
  reg.zero_grads();
  Tensor dx = layer.backward(arena, Tensor{r.data(), y.shape}, step, cache);
  const std::vector<float> dxv(dx.f32(), dx.f32() + dx.numel());
  const std::vector<float> grads(reg.grads(), reg.grads() + reg.total_elements());
  // Step 3e-3: the loss's float rounding moves a quotient at step 1e-3 by up to 5e-4, past the
  // tolerance of a DSelect-k selector's or a COMET node's gradient of 8e-3 when oneDNN's kernels
  // for another CPU round differently (ONEDNN_MAX_CPU_ISA=AVX2 or SSE41 here); at 3e-3 every
  // case stays within half its tolerance on all of them, while 1e-2 flips GShard's top-2.
  const double step_size = 3e-3;
  check_gradient(cfg.gate + ".x", x.data(), dxv.data(), T * d, loss, 40, step_size, 2e-2, atol);
  for (const auto& p : reg.all()) {
    // The permutation logits enter as logits / tau (tau 1e-3 at the first step): a small step.
    const double h = p.name.ends_with("/perm/logits") ? 1e-5 : step_size;
    check_gradient(cfg.gate + "." + p.name, reg.values() + p.offset, grads.data() + p.offset,
                   p.shape.numel(), loss, 40, h, 2e-2, atol);
  }
}

// The FLOPs the progress line's MFU counts: one training step's GEMMs, recorded as they run
// (their 2 m n k each), against train_flops_per_token, for a dense model and for one with a
// dropless Switch block (every token reaches one expert).
TEST(Flops, TrainingCountIsTheStepsGemms) {
  for (int experts : {0, 4}) {
    GptConfig c{.vocab = 40,
                .seq_len = 12,
                .d_model = 16,
                .n_layer = 2,
                .n_head = 2,
                .d_ff = 24,
                .moe = {}};
    c.moe.num_experts = experts;
    c.moe.dropless = true;
    c.moe.d_ff = 20;
    ParamRegistry reg;
    const Gpt model(c, reg);
    reg.allocate();
    reg.initialize(3);
    std::vector<int32_t> tok(3 * 12), tgt(3 * 12);
    for (size_t i = 0; i < tok.size(); ++i)
      tok[i] = int32_t((i * 7) % 40), tgt[i] = int32_t((i * 3 + 1) % 40);
    const Tensor tokens{tok.data(), {3, 12}, DType::I32}, targets{tgt.data(), {36}, DType::I32};
    MpiGroup self(MPI_COMM_SELF, "self");
    FlatAllToAll a2a(self);
    Arena arena;
    Gpt::Activations acts;
    std::vector<cpu::GemmCall> calls;
    cpu::record_gemms(&calls);
    Tensor logits = model.forward(arena, tokens, acts, {.a2a = &a2a, .route = context(36, 12)});
    lm_loss(arena, logits, targets);
    model.backward(arena, logits, acts);
    cpu::record_gemms(nullptr);
    double flops = 0;
    for (const auto& g : calls) flops += 2.0 * double(g.m * g.n * g.k);
    EXPECT_NEAR(flops, 36 * train_flops_per_token(c, 1), 1e-9 * flops) << experts << " experts";
  }
}

TEST(Moe, SwitchWithCapacityMatchesFiniteDifferences) {
  MoeConfig c;
  c.num_experts = 4;
  c.gate = "switch";
  c.capacity_factor = 1.0;
  c.aux_weight = 0.5;  // large, so that the aux and z gradients are visible in the check
  c.z_weight = 0.1;
  check_moe(c, 12, 6);
}

TEST(Moe, GShardDroplessMatchesFiniteDifferences) {
  MoeConfig c;
  c.num_experts = 4;
  c.gate = "gshard";
  c.dropless = true;
  c.aux_weight = 0.5;
  c.z_weight = 0.1;
  check_moe(c, 10, 5);
}

TEST(Moe, HashMatchesFiniteDifferences) {
  MoeConfig c;
  c.num_experts = 3;
  c.gate = "hash";
  check_moe(c, 9, 9);
}

TEST(Moe, EvoMoeMatchesFiniteDifferencesInEveryPhase) {
  MoeConfig c;
  c.num_experts = 4;
  c.gate = "evomoe";
  c.aux_weight = 0.5;
  c.evo_threshold = 0.05;
  // Step 2's Gumbel draws leave no two experts of a token within the finite difference's reach
  // (step 7's put two of token 4 within 3e-4 of each other).
  for (bool gumbel_weights : {false, true}) {
    c.evo_gumbel_weights = gumbel_weights;
    check_moe(c, 8, 4, /*phase=*/1, /*tau=*/1.5f, true, 2);  // dense-to-sparse
    check_moe(c, 8, 4, /*phase=*/2, /*tau=*/0.5f, true, 2);  // Gumbel-max top-1
  }
  check_moe(c, 8, 4, /*phase=*/1, /*tau=*/1.5f, /*training=*/false);  // evaluation: argmax
}

TEST(Moe, DSelectKMatchesFiniteDifferences) {
  MoeConfig c;
  c.gate = "dselect_k";
  c.keys.set("dselect.k", 2);
  c.keys.set("dselect.gamma", 3.0);  // most z inside the smooth steps, some saturated: zeros
  c.keys.set("dselect.entropy", 0.5);
  for (int experts : {4, 6}) {  // 6: the penalty on the codes beyond the experts
    c.num_experts = experts;
    check_moe(c, 8, 8);
  }
  check_moe(c, 8, 8, 0, 1.0f, /*training=*/false);  // evaluation: no regularisers
}

// Hand computation: one selector (k = 1) of two bits over 4 experts, gamma 1, the router's
// weights zero, so z is its bias. Bits are read most significant first: expert 2 is "10".
TEST(DSelectK, SmoothStepsPickExpertsByTheirBinaryCodes) {
  ParamRegistry reg;
  const DSelectKGate gate(reg, "g", 3, {4, 1, 1.0, 0.0});
  reg.allocate();
  Arena arena;
  std::vector<float> x(2 * 3, 1.0f);
  const auto route = [&](float z0, float z1) {
    std::fill(reg.values(), reg.values() + reg.total_elements(), 0.0f);
    reg.value(reg.find("g/z/b")).f32()[0] = z0;
    reg.value(reg.find("g/z/b")).f32()[1] = z1;
    arena.reset();
    return gate.route(arena, Tensor{x.data(), {2, 3}}, context(2, 2));
  };
  Routing r = route(0.6f, -0.6f);  // s = (1, 0): code 10, expert 2 alone
  for (int e = 0; e < 4; ++e) {
    EXPECT_EQ(r.expert.i32()[e], e == 2 ? 2 : -1) << e;
    EXPECT_EQ(r.weight.f32()[e], e == 2 ? 1.0f : 0.0f) << e;
  }
  r = route(0.0f, 0.6f);  // s = (1/2, 1): codes 01 and 11, half each
  for (int e = 0; e < 4; ++e) {
    EXPECT_EQ(r.expert.i32()[e], e % 2 == 1 ? e : -1) << e;
    EXPECT_FLOAT_EQ(r.weight.f32()[e], e % 2 == 1 ? 0.5f : 0.0f) << e;
  }
  // S(0.25) = -2/64 + 3/8 + 1/2 = 0.84375: expert e's weight is the product of its bits' terms.
  r = route(0.25f, -0.25f);
  const float hi = 0.84375f, lo = 1.0f - hi;
  const float want[4] = {lo * hi, lo * lo, hi * hi, hi * lo};
  for (int e = 0; e < 4; ++e) EXPECT_FLOAT_EQ(r.weight.f32()[e], want[e]) << e;
  EXPECT_EQ(r.load, (std::vector<int64_t>{2, 2, 2, 2}));
}

// COMET+'s permutation around a top-k gate with capacity, the hash gate (whose own weights are
// constants) and COMET, at the first learning step (tau 1e-3, 20 Sinkhorn iterations): the
// permutation logits at the scale of tau, so that the soft permutation is not yet hard. Every
// expert runs for every token, and the loss's float rounding moves a difference quotient by up to
// 1e-3 (clang's build: 9.8e-4 off a COMET leaf's gradient of 1.7e-4 at step 1e-3, within 3e-4 at
// step 1e-2): an absolute tolerance of 1.5e-3.
TEST(Moe, PermutationSearchMatchesFiniteDifferences) {
  for (const char* gate : {"switch", "hash", "comet"}) {
    MoeConfig c;
    c.num_experts = 4;
    c.gate = gate;
    c.keys.set("perm.steps", 20);
    c.keys.set("perm.entropy", 0.01);
    c.keys.set("comet.gamma", 3.0);
    check_moe(
        c, 8, 4, 0, 1.0f, true, 0,
        [](ParamRegistry& reg) {
          const Tensor l = reg.value(reg.find("moe/gate/perm/logits"));
          for (int64_t i = 0; i < l.numel(); ++i) l.f32()[i] *= 2e-3f;
        },
        1.5e-3);
  }
}

TEST(Moe, CometMatchesFiniteDifferences) {
  MoeConfig c;
  c.gate = "comet";
  c.keys.set("comet.k", 2);
  c.keys.set("comet.gamma", 3.0);  // most nodes inside the smooth steps, some saturated: zeros
  c.keys.set("comet.entropy", 0.5);
  for (int experts : {4, 5}) {  // 5: an incomplete tree, its leaves on two levels
    c.num_experts = experts;
    check_moe(c, 8, 8);
  }
  check_moe(c, 8, 8, 0, 1.0f, /*training=*/false);  // evaluation: no regulariser
}

// Hand computation: one tree (k = 1), gamma 1, the routers' weights zero, so each node's z and
// each leaf's logit is its bias. Over 4 experts nodes 3..6 are experts 0..3; over 3 experts the
// heap's leaves are nodes 2, 3, 4, and left to right (3, 4, then 2) experts 0, 1, 2.
TEST(Comet, TreePathsAndLeafLogitsGiveTheWeights) {
  const auto weights = [](int experts, const std::vector<float>& z, const std::vector<float>& a) {
    ParamRegistry reg;
    const CometGate gate(reg, "g", 3, {experts, 1, 1.0, 0.0});
    reg.allocate();
    std::fill(reg.values(), reg.values() + reg.total_elements(), 0.0f);
    std::copy(z.begin(), z.end(), reg.value(reg.find("g/nodes/b")).f32());
    std::copy(a.begin(), a.end(), reg.value(reg.find("g/leaves/b")).f32());
    Arena arena;
    std::vector<float> x(3, 1.0f);
    const Routing r = gate.route(arena, Tensor{x.data(), {1, 3}}, context(1, 1));
    std::vector<float> w(r.weight.f32(), r.weight.f32() + experts);
    for (int e = 0; e < experts; ++e) EXPECT_EQ(r.expert.i32()[e], w[e] > 0 ? e : -1) << e;
    return w;
  };
  // The root sends everything left (S(0.6) = 1), node 1 splits it evenly (S(0) = 1/2), and the
  // leaves' logits (log 3, 0) weigh experts 0 and 1 as 3 : 1; experts 2 and 3 get exact zeros.
  std::vector<float> w = weights(4, {0.6f, 0.0f, 0.0f}, {std::log(3.0f), 0, 0, 0});
  EXPECT_NEAR(w[0], 0.75f, 1e-6f);
  EXPECT_NEAR(w[1], 0.25f, 1e-6f);
  EXPECT_EQ(w[2], 0.0f);
  EXPECT_EQ(w[3], 0.0f);
  // S(0.25) = 0.84375 to the left at the root, S(-0.25) = 0.15625 to the left at node 2.
  w = weights(4, {0.25f, 0.0f, -0.25f}, {0, 0, 0, 0});
  const float want[4] = {0.84375f / 2, 0.84375f / 2, 0.15625f * 0.15625f, 0.15625f * 0.84375f};
  for (int e = 0; e < 4; ++e) EXPECT_NEAR(w[e], want[e], 1e-6f) << e;
  // Three experts: right at the root is leaf node 2, expert 2, alone; left at the root and
  // right at node 1 is leaf node 4, expert 1.
  EXPECT_EQ(weights(3, {-0.6f, 0.0f}, {0, 0, 0}), (std::vector<float>{0, 0, 1}));
  EXPECT_EQ(weights(3, {0.6f, -0.6f}, {0, 0, 0}), (std::vector<float>{0, 1, 0}));
}

// The Hungarian assignment against brute force over every permutation, for 1 to 6 experts.
TEST(Permutation, HungarianAssignmentMatchesBruteForce) {
  for (int n = 1; n <= 6; ++n)
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<float> w(n * n);
      const std::string name = "hungarian-" + std::to_string(n) + "-" + std::to_string(trial);
      randn(w.data(), n * n, name.c_str());
      std::vector<int> p(n), best;
      for (int i = 0; i < n; ++i) p[i] = i;
      double best_sum = -1e30;
      do {
        double s = 0;
        for (int i = 0; i < n; ++i) s += w[i * n + p[i]];
        if (s > best_sum) best_sum = s, best = p;
      } while (std::next_permutation(p.begin(), p.end()));
      EXPECT_EQ(max_assignment(w.data(), n), best) << n << " experts, trial " << trial;
    }
}

// Sinkhorn: doubly stochastic, a 2 x 2 limit by hand, and its backward
// through every iteration against finite differences.
TEST(Permutation, SinkhornIsDoublyStochasticAndMatchesFiniteDifferences) {
  const int64_t n = 5;
  std::vector<float> logits(n * n), r(n * n);
  randn(logits.data(), n * n, "sinkhorn-logits");
  randn(r.data(), n * n, "sinkhorn-r");
  const Sinkhorn s = sinkhorn(logits.data(), n, 0.7, 30);
  for (int64_t i = 0; i < n; ++i) {
    double row = 0, col = 0;
    for (int64_t j = 0; j < n; ++j) row += s.p[i * n + j], col += s.p[j * n + i];
    EXPECT_NEAR(row, 1.0, 1e-4) << i;
    EXPECT_NEAR(col, 1.0, 1e-6) << i;
  }
  // By hand, 2 x 2: the limit is [[p, 1 - p], [1 - p, p]] with (p / (1 - p))^2 =
  // exp((l00 + l11 - l01 - l10) / tau); 2 ln 3 at tau 1 gives p = 3/4.
  const float two[4] = {std::log(3.0f), 0.3f, -0.3f, std::log(3.0f)};
  const Sinkhorn s2 = sinkhorn(two, 2, 1.0, 30);
  EXPECT_NEAR(s2.p[0], 0.75f, 1e-6f);
  EXPECT_NEAR(s2.p[1], 0.25f, 1e-6f);
  EXPECT_NEAR(s2.p[3], 0.75f, 1e-6f);
  std::vector<float> grad(n * n, 0.0f);
  sinkhorn_backward(s, r.data(), 0.7, grad.data());
  auto loss = [&] {
    const Sinkhorn t = sinkhorn(logits.data(), n, 0.7, 30);
    double l = 0;
    for (int64_t i = 0; i < n * n; ++i) l += double(t.p[i]) * r[i];
    return l;
  };
  check_gradient("sinkhorn", logits.data(), grad.data(), n * n, loss, 25, 1e-3, 2e-2, 1e-4);
  // The schedules: tau from 1e-3 down to 1e-7, 20 to 150 iterations, log-linear and linear.
  EXPECT_DOUBLE_EQ(sinkhorn_tau(0, 100), 1e-3);
  EXPECT_NEAR(sinkhorn_tau(50, 100), 1e-5, 1e-18);
  EXPECT_EQ(sinkhorn_iterations(0, 100), 20);
  EXPECT_EQ(sinkhorn_iterations(50, 100), 85);
  EXPECT_EQ(sinkhorn_iterations(99, 100), 148);
}

// Around the hash gate (token id i to expert i % 4): a learning step stores its soft
// permutation, Sinkhorn(Lambda / 1e-3, 20 iterations); after the learning steps, and at
// evaluation, a token goes to col(its expert), col the Hungarian assignment of the stored P.
TEST(Permutation, TheStoredSoftPermutationsAssignmentRelabelsTheExperts) {
  ParamRegistry reg;
  GateKeys keys;
  keys.set("perm.steps", 3);
  const PermutedGate gate(std::make_unique<HashGate>(std::vector<int32_t>{0, 1, 2, 3}, 4), reg, "g",
                          4, keys);
  reg.allocate();
  reg.initialize(1);
  Arena arena;
  std::vector<float> x(8 * 2);
  std::vector<int32_t> ids = {0, 1, 2, 3, 3, 2, 1, 0};
  RouteContext c = context(8, 8);
  c.token_ids = ids.data();
  c.step = 0;
  const Routing soft = gate.route(arena, Tensor{x.data(), {8, 2}}, c);
  const Tensor stored = reg.value(reg.find("g/perm/soft"));
  const Sinkhorn want = sinkhorn(reg.value(reg.find("g/perm/logits")).f32(), 4, 1e-3, 20);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(stored.f32()[i], want.p[i]) << i;
  // Weights over every expert: token 1's (expert 1, weight 1) becomes row 1 of P, rescaled to
  // the weight's sum, 1 (Sinkhorn's rows sum to 1 only nearly).
  EXPECT_EQ(soft.k, 4);
  const float row = want.p[4] + want.p[5] + want.p[6] + want.p[7];
  for (int l = 0; l < 4; ++l)
    EXPECT_NEAR(soft.weight.f32()[4 + l], want.p[4 + l] / row, 1e-6f) << l;
  // A stored P whose best assignment is 0 -> 2, 1 -> 0, 2 -> 3, 3 -> 1.
  const int col[4] = {2, 0, 3, 1};
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) stored.f32()[i * 4 + j] = j == col[i] ? 0.4f : 0.2f;
  for (bool training : {true, false}) {
    c.step = 3;
    c.training = training;
    const Routing hard = gate.route(arena, Tensor{x.data(), {8, 2}}, c);
    ASSERT_EQ(hard.k, 1);
    for (int t = 0; t < 8; ++t) {
      EXPECT_EQ(hard.expert.i32()[t], col[ids[t]]) << t;
      EXPECT_EQ(hard.weight.f32()[t], 1.0f) << t;
    }
    EXPECT_EQ(hard.load, (std::vector<int64_t>{2, 2, 2, 2}));
  }
}

TEST(Gates, CapacityDropsAgainstHandComputation) {
  // 8 tokens, 2 groups of 4, 2 experts, k = 1, capacity ceil(1.0 * 4 / 2) = 2 per group.
  // Group 0 chooses 0,0,0,1 -> the third 0 is dropped; group 1 chooses 1,1,1,1 -> two dropped.
  std::vector<int32_t> e = {0, 0, 0, 1, 1, 1, 1, 1};
  const Tensor t{e.data(), {8, 1}, DType::I32};
  EXPECT_EQ(expert_capacity(1.0, 1, 4, 2, false), 2);
  EXPECT_EQ(apply_capacity(t, 2, 4, 2), 3);
  EXPECT_EQ(e, (std::vector<int32_t>{0, 0, -1, 1, 1, 1, -1, -1}));
  // k = 2: first choices claim slots before second choices. 4 tokens, 2 experts,
  // capacity ceil(1.0 * 2 * 4 / 2) = 4: first choices 0,0,0,1; second choices 1,1,1,0:
  // expert 0 gets 3 firsts then the last token's second; expert 1 gets 1 first + 3 seconds.
  std::vector<int32_t> e2 = {0, 1, 0, 1, 0, 1, 1, 0};
  EXPECT_EQ(expert_capacity(1.0, 2, 4, 2, false), 4);
  EXPECT_EQ(apply_capacity(Tensor{e2.data(), {4, 2}, DType::I32}, 2, 4, 3), 2);
  // capacity 3: expert 0 firsts (t0,t1,t2) fill it, so t3's second (0) drops; expert 1: t3 first,
  // then seconds t0, t1 fill it, t2's second drops.
  EXPECT_EQ(e2, (std::vector<int32_t>{0, 1, 0, 1, 0, -1, 1, -1}));
  // Tokens that left at an early exit claim no slot: group 0 as above with t0 and t1 gone keeps
  // both of expert 0's later choices, and a gone token's choices are -1 but not counted dropped.
  std::vector<int32_t> e3 = {0, 0, 0, 1, 1, 1, 1, 1};
  const std::vector<uint8_t> alive = {0, 0, 1, 1, 1, 0, 1, 1};
  EXPECT_EQ(apply_capacity(Tensor{e3.data(), {8, 1}, DType::I32}, 2, 4, 2, alive.data()), 1);
  EXPECT_EQ(e3, (std::vector<int32_t>{-1, -1, 0, 1, 1, -1, 1, -1}));
}

TEST(Gates, SwitchRoutingCountsAndDrops) {
  // A gate whose weights send every token to expert 2 drops all but the capacity.
  ParamRegistry reg;
  TopKConfig c{.k = 1, .num_experts = 4, .capacity_factor = 1.0};
  const TopKGate gate(reg, "g", 3, c);
  reg.allocate();
  float* w = reg.values();  // [d=3, E=4]
  for (int i = 0; i < 3; ++i) w[i * 4 + 2] = 1.0f;
  std::vector<float> x(8 * 3, 1.0f);
  Arena arena;
  const Routing r = gate.route(arena, Tensor{x.data(), {8, 3}}, context(8, 8));
  EXPECT_EQ(r.load, (std::vector<int64_t>{0, 0, 8, 0}));
  EXPECT_EQ(r.dropped, 6);  // capacity ceil(8 / 4) = 2
  for (int t = 0; t < 8; ++t) EXPECT_EQ(r.expert.i32()[t], t < 2 ? 2 : -1);
  // Every token routed to one expert: f = (0,0,1,0), so aux = alpha * E * P_2.
  double P2 = 0;
  for (int t = 0; t < 8; ++t) P2 += r.probs.f32()[t * 4 + 2] / 8;
  EXPECT_NEAR(r.aux, 0.01 * 4 * P2, 1e-9);
}

TEST(Gates, HashRoutingIsAPureFunctionOfTheTokenId) {
  const auto table = random_hash(50, 4, 9);
  EXPECT_EQ(table, random_hash(50, 4, 9));
  EXPECT_NE(table, random_hash(50, 4, 10));
  const HashGate gate(table, 4);
  std::vector<int32_t> ids = {3, 17, 3, 49, 17, 0};
  std::vector<float> x(6 * 2);
  RouteContext c = context(6, 6);
  c.token_ids = ids.data();
  Arena arena;
  const Routing r = gate.route(arena, Tensor{x.data(), {6, 2}}, c);
  for (int t = 0; t < 6; ++t) EXPECT_EQ(r.expert.i32()[t], table[ids[t]]);
  EXPECT_EQ(r.expert.i32()[0], r.expert.i32()[2]);
  // Balanced: ids by falling frequency (0:10, 2:7, 3:7, 4:2, 1:1), each to the least-loaded
  // expert: 0->e0 (10|0), 2->e1 (10|7), 3->e1 (10|14), 4->e0 (12|14), 1->e0 (13|14).
  EXPECT_EQ(balanced_hash({10, 1, 7, 7, 2}, 2), (std::vector<int32_t>{0, 0, 1, 1, 0}));
}

TEST(Thor, TwoPassesDrawIndependentExpertsSharedByEveryRank) {
  const ThorGate gate(4, GateKeys{});  // the defaults: batch in training, position at evaluation
  std::vector<float> x(16 * 2);
  Arena arena;
  RouteContext c = context(16, 16);
  c.seq_len = 4;
  c.training = true;
  int differ = 0, layers_differ = 0;
  for (uint64_t key = 0; key < 40; ++key) {
    c.key = key;
    c.pass = 0;
    c.layer = 0;
    const Routing a = gate.route(arena, Tensor{x.data(), {16, 2}}, c);
    const Routing again = gate.route(arena, Tensor{x.data(), {16, 2}}, c);
    c.pass = 1;
    const Routing b = gate.route(arena, Tensor{x.data(), {16, 2}}, c);
    c.pass = 0;
    c.layer = 1;
    const Routing other_layer = gate.route(arena, Tensor{x.data(), {16, 2}}, c);
    // Batch granularity: one expert for every token; a pure function of (key, layer, pass).
    for (int t = 0; t < 16; ++t) {
      EXPECT_EQ(a.expert.i32()[t], a.expert.i32()[0]);
      EXPECT_EQ(again.expert.i32()[t], a.expert.i32()[t]);
      EXPECT_EQ(a.weight.f32()[t], 1.0f);
    }
    differ += a.expert.i32()[0] != b.expert.i32()[0];
    layers_differ += a.expert.i32()[0] != other_layer.expert.i32()[0];
  }
  // Independent draws agree with probability 1/4: over 40 keys, about 30 differ.
  EXPECT_GT(differ, 20);
  EXPECT_LT(differ, 40);
  EXPECT_GT(layers_differ, 20);  // each layer draws its own expert
  EXPECT_LT(layers_differ, 40);
}

// Evaluation: 3 sequences of 8 tokens, 8 experts, for each granularity; draws are functions of
// the global token and change with the evaluation batch (ctx.step).
TEST(Thor, EvaluationDrawsPerPositionTokenOrSequence) {
  const int64_t S = 8, N = 3, T = S * N;
  std::vector<float> x(T * 2);
  Arena arena;
  RouteContext c = context(T, T);
  c.seq_len = S;
  c.training = false;
  for (const std::string draw : {"position", "token", "sequence"}) {
    GateKeys keys;
    keys.set("thor.eval_granularity", draw);
    const ThorGate gate(8, keys);
    c.step = 0;
    c.first_token = 0;
    const Routing a = gate.route(arena, Tensor{x.data(), {T, 2}}, c);
    const int32_t* e = a.expert.i32();
    int across_positions = 0, across_sequences = 0;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t s = t / S, i = t % S;
      if (draw == "position") {
        EXPECT_EQ(e[t], e[i]) << "shared by the batch's sequences";
      }
      if (draw == "sequence") {
        EXPECT_EQ(e[t], e[s * S]) << "one expert per sequence";
      }
      across_positions += i > 0 && e[t] != e[t - 1];
      across_sequences += s > 0 && e[t] != e[t - S];
    }
    // What each granularity lets vary (8 experts: most neighbours differ).
    EXPECT_EQ(across_positions > 0, draw != "sequence");
    EXPECT_EQ(across_sequences > 0, draw != "position");
    // The same global tokens routed by a rank that holds only sequences 1 and 2.
    c.first_token = S;
    const Routing b = gate.route(arena, Tensor{x.data(), {T - S, 2}}, c);
    for (int64_t t = 0; t < T - S; ++t) EXPECT_EQ(b.expert.i32()[t], e[t + S]);
    // Another evaluation batch draws afresh.
    c.first_token = 0;
    c.step = 1;
    const Routing next = gate.route(arena, Tensor{x.data(), {T, 2}}, c);
    int changed = 0;
    for (int64_t t = 0; t < T; ++t) changed += next.expert.i32()[t] != e[t];
    EXPECT_GT(changed, 0);
  }
}

TEST(EvoMoe, DenseToSparseGateIsDenseWhenHotAndTopOneWhenCold) {
  ParamRegistry reg;
  const EvoGate gate(reg, "g", 6, {8, 0.001, 0.01, false});
  reg.allocate();
  reg.initialize(3);
  test::randn(reg.values(), reg.total_elements(), "evo-w", 1.0f);
  std::vector<float> x(32 * 6);
  test::randn(x.data(), int64_t(x.size()), "evo-x");
  Arena arena;
  RouteContext c = context(32, 32);
  c.phase = 1;
  auto active = [&](float tau) {
    c.tau = tau;
    const Routing r = gate.route(arena, Tensor{x.data(), {32, 6}}, c);
    int64_t n = 0;
    for (int64_t v : r.load) n += v;
    return double(n) / 32;
  };
  EXPECT_EQ(active(100.0f), 8.0);  // every expert above the threshold: dense
  EXPECT_LT(active(0.02f), 1.2);   // nearly one-hot
  EXPECT_GE(active(0.02f), 1.0);   // never empty: the argmax at least
  c.phase = 2;                     // after annealing: top-1
  const Routing top = gate.route(arena, Tensor{x.data(), {32, 6}}, c);
  EXPECT_EQ(top.k, 1);
  c.phase = 0;  // expert-diversify: one expert, weight 1
  const Routing one = gate.route(arena, Tensor{x.data(), {32, 6}}, c);
  for (int t = 0; t < 32; ++t) EXPECT_EQ(one.expert.i32()[t], 0);
}

// The gate against a hand computation of the authors' code (topkgate.py): h = x W; in
// gate-sparsify the active set is {j : softmax((h + G) / tau)_j > threshold} and the weights are
// the masked clean softmax(h); after annealing the expert is argmax(h + G), a sample of
// softmax(h); at evaluation argmax(h); the balance loss alpha E sum_e me_e ce_e.
TEST(EvoMoe, GateFollowsTheAuthorsCode) {
  const int64_t T = 400, d = 3, E = 4;
  const double thr = 0.1, alpha = 0.01;
  ParamRegistry reg;
  const EvoGate gate(reg, "g", d, {int(E), thr, alpha, false});
  reg.allocate();
  reg.initialize(3);
  test::randn(reg.values(), reg.total_elements(), "evo-w", 0.7f);
  std::vector<float> x(T * d);
  test::randn(x.data(), int64_t(x.size()), "evo-x");
  const float* W = reg.value(reg.find("g/w")).f32();
  Arena arena;
  RouteContext c = context(T, T);
  c.tau = 0.7f;
  c.first_token = 5;
  const Rng gumbel(c.seed, stream_id({name_hash("dts-gumbel"), uint64_t(c.step), uint64_t(0)}));
  // Per token: the logits, the clean softmax and the Gumbel-perturbed logits, in double.
  auto hand = [&](int64_t t, std::vector<double>& h, std::vector<double>& p,
                  std::vector<double>& u) {
    h.assign(E, 0), p.assign(E, 0), u.assign(E, 0);
    for (int64_t j = 0; j < E; ++j) {
      for (int64_t i = 0; i < d; ++i) h[j] += double(x[t * d + i]) * W[i * E + j];
      u[j] = h[j] - std::log(-std::log(double(gumbel.uniform(uint64_t((5 + t) * E + j)))));
    }
    double s = 0;
    for (int64_t j = 0; j < E; ++j) s += (p[j] = std::exp(h[j]));
    for (double& v : p) v /= s;
  };
  std::vector<double> h, p, u;
  for (int phase : {1, 2})
    for (bool training : {true, false}) {
      c.phase = phase;
      c.training = training;
      const Routing r = gate.route(arena, Tensor{x.data(), {T, d}}, c);
      ASSERT_EQ(r.k, phase == 1 && training ? E : 1);
      std::vector<double> me(E, 0), ce(E, 0);
      int64_t sampled_off_argmax = 0;
      for (int64_t t = 0; t < T; ++t) {
        hand(t, h, p, u);
        std::vector<int> on(E, 0);
        if (r.k == E) {
          double s = 0;
          std::vector<double> g(E);
          for (int64_t j = 0; j < E; ++j) s += (g[j] = std::exp(u[j] / c.tau));
          for (int64_t j = 0; j < E; ++j) on[j] = g[j] / s > thr;
        } else {
          const std::vector<double>& by = training ? u : h;
          on[std::max_element(by.begin(), by.end()) - by.begin()] = 1;
          sampled_off_argmax += !on[std::max_element(h.begin(), h.end()) - h.begin()];
        }
        for (int64_t j = 0, col = 0; j < E; ++j) {
          if (r.k == 1 && !on[j]) continue;
          col = r.k == E ? j : 0;
          EXPECT_EQ(r.expert.i32()[t * r.k + col], on[j] ? j : -1) << phase << " " << t;
          if (on[j]) {
            EXPECT_NEAR(r.weight.f32()[t * r.k + col], p[j], 1e-6) << phase << " " << t;
          }
          me[j] += on[j] * p[j] / T;
          ce[j] += on[j] / double(T);
        }
      }
      double aux = 0;
      for (int64_t j = 0; j < E; ++j) aux += me[j] * ce[j];
      EXPECT_NEAR(r.aux, alpha * E * aux, 1e-6) << phase;
      // Top-1 in training samples: some tokens leave the argmax (about 1 - E max p of them).
      if (phase == 2) {
        EXPECT_EQ(sampled_off_argmax > T / 20, training) << sampled_off_argmax;
      }
    }
}

// The spawn: every expert becomes theta_0 * M_e with M_e keeping a weight with probability
// 1 - mask_ratio (0.25 here, so that keep and mask rates differ), no rescale; the Adam moments of
// the experts and the gate restart from zero, every other parameter's are kept.
TEST(EvoMoe, SpawnedExpertsAreMaskedCopiesOfExpertZeroWithFreshMoments) {
  Groups g = make_groups(1, 0, MPI_COMM_SELF);
  ParamRegistry reg;
  const int w = reg.add_expert("blocks/1/moe/experts/fc1/w", {4, 50, 60}, Init::normal(1.0f), 4, 0);
  const int gate = reg.add("blocks/1/moe/gate/w", {50, 4}, Init::normal(1.0f));
  const int other = reg.add("blocks/0/ffn/fc1/w", {50, 60}, Init::normal(1.0f));
  reg.allocate();
  reg.initialize(2);
  AdamW opt(reg, {});
  for (int i = 0; i < int(reg.size()); ++i) {  // moments as after some training
    const ParamInfo& p = reg.info(i);
    for (int64_t k = 0; k < p.shape.numel(); ++k)
      opt.m().data()[p.offset + k] = opt.v().data()[p.offset + k] = 0.5f;
  }
  const int64_t n = 50 * 60;
  const std::vector<float> parent(reg.value(w).f32(), reg.value(w).f32() + n);
  spawn_experts(reg, opt, g, 9, 0.25);
  const float* v = reg.value(w).f32();
  int64_t masked = 0;
  for (int e = 0; e < 4; ++e)
    for (int64_t i = 0; i < n; ++i) {
      const float x = v[e * n + i];
      ASSERT_TRUE(x == parent[i] || x == 0.0f);  // theta_0 * M_e, no rescale
      masked += x == 0.0f;
    }
  EXPECT_NEAR(double(masked) / (4 * n), 0.25, 0.02);  // 12000 draws: 0.25 +- 5 sd
  for (int a = 0; a < 4; ++a) {
    EXPECT_FALSE(std::equal(v + a * n, v + a * n + n, parent.begin())) << a;
    for (int b = a + 1; b < 4; ++b)
      EXPECT_FALSE(std::equal(v + a * n, v + a * n + n, v + b * n)) << a << " " << b;
  }
  auto moments = [&](int i, float want) {
    const ParamInfo& p = reg.info(i);
    for (int64_t k = 0; k < p.shape.numel(); ++k) {
      ASSERT_EQ(opt.m().data()[p.offset + k], want) << p.name;
      ASSERT_EQ(opt.v().data()[p.offset + k], want) << p.name;
    }
  };
  moments(w, 0.0f);
  moments(gate, 0.0f);
  moments(other, 0.5f);
}

}  // namespace
}  // namespace mt
