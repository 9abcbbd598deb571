// JEI-DNN's early exits: the exit rules against hand computations, the heads' and gates'
// gradients against finite differences, the authors' IM loss against its cancelled form, an
// exit's prediction against the backbone cut after the exit's block, and a leaving token's frozen
// state (state propagation) against the blocks run one by one.
#include <gtest/gtest.h>

#include <cmath>

#include "comm/all_to_all.hpp"
#include "comm/mpi_group.hpp"
#include "gradcheck.hpp"
#include "model/exits.hpp"
#include "model/loss.hpp"
#include "tensor/ops.hpp"

namespace mt {
namespace {

using test::check_gradient;
using test::randn;

TEST(ExitRules, MinFormProbabilitiesAndTheHalfRule) {
  // Moderate gates add up: g = (0.3, 0.3, 0.3) exits at 2 with q = 0.3 / 0.4.
  float p[3], q[3];
  const float g[3] = {0.3f, 0.3f, 0.3f};
  exit_probabilities(g, 3, p, q);
  for (int l = 0; l < 3; ++l) EXPECT_FLOAT_EQ(p[l], 0.3f) << l;
  EXPECT_FLOAT_EQ(q[0], 0.3f);
  EXPECT_FLOAT_EQ(q[1], 0.3f / 0.7f);
  EXPECT_NEAR(q[2], 0.75f, 1e-6);
  EXPECT_EQ(exit_at(q, 3), 2);
  // p_1 = min(0.6, 1 - 0.8) = 0.2; the first gate already exits.
  const float g2[2] = {0.8f, 0.6f};
  exit_probabilities(g2, 2, p, q);
  EXPECT_FLOAT_EQ(p[1], 0.2f);
  EXPECT_FLOAT_EQ(q[0], 0.8f);
  EXPECT_NEAR(q[1], 1.0f, 1e-6);  // 0.2 / (1 - 0.8)
  EXPECT_EQ(exit_at(q, 2), 0);
  const float g3[2] = {0.1f, 0.2f};  // 0.1, then 0.2 / 0.9: to the backbone's head
  exit_probabilities(g3, 2, p, q);
  EXPECT_EQ(exit_at(q, 2), 2);
}

TEST(ExitRules, FeaturesOfAHandSoftmax) {
  const float z[3] = {std::log(0.2f), std::log(0.5f), std::log(0.3f)};
  const std::array<float, 4> f = exit_features(z, 3);
  const double h = -(0.5 * std::log(0.5) + 0.3 * std::log(0.3) + 0.2 * std::log(0.2));
  const double q[3] = {0.25 / 0.38, 0.09 / 0.38, 0.04 / 0.38};
  const double hq = -(q[0] * std::log(q[0]) + q[1] * std::log(q[1]) + q[2] * std::log(q[2]));
  EXPECT_NEAR(f[0], 0.5, 1e-6);
  EXPECT_NEAR(f[1], h, 1e-6);
  EXPECT_NEAR(f[2], 0.2, 1e-6);
  EXPECT_NEAR(f[3], hq, 1e-6);
}

TEST(ExitRules, OracleTargetsAndPositiveWeights) {
  const float ce[4] = {2.0f, 1.5f, 1.2f, 1.0f};
  const std::vector<double> cost = {0.25, 0.5, 0.75, 1.0};
  EXPECT_EQ(oracle_exit(ce, cost, 1.0), 2);  // 2.25, 2.0, 1.95, 2.0
  EXPECT_EQ(oracle_exit(ce, cost, 0.0), 3);
  const float tie[4] = {1.0f, 1.0f, 1.0f, 1.0f};
  EXPECT_EQ(oracle_exit(tie, std::vector<double>(4, 1.0), 0.5), 0);  // the first on ties
  // n = (0, 3, 1 | 6 at the final head) of 10: (9.9 / 0.1 -> 5, 7 / 3, 9 -> 5).
  const std::vector<float> w = positive_weights({0, 3, 1, 6}, 10);
  ASSERT_EQ(w.size(), 3u);
  EXPECT_FLOAT_EQ(w[0], 5.0f);
  EXPECT_FLOAT_EQ(w[1], 7.0f / 3.0f);
  EXPECT_FLOAT_EQ(w[2], 5.0f);
  // Gate targets y = 1[l >= oracle]: a BCE of 0 at s = +-30 exactly on them.
  const float s[3] = {-30.0f, 30.0f, 30.0f};
  const int32_t oracle = 1;
  float ds[3];
  EXPECT_NEAR(gate_bce(s, &oracle, 1, 3, w, 3.0, ds), 0.0, 1e-9);
  // At s = 0 every BCE is log 2, the positive ones weighted: 1 + 7/3 + 5 of them.
  const float zero[3] = {0, 0, 0};
  EXPECT_NEAR(gate_bce(zero, &oracle, 1, 3, w, 3.0, ds), (1 + 7.0 / 3 + 5) * std::log(2.0), 1e-6);
  EXPECT_FLOAT_EQ(ds[0], 0.5f / 3);
  EXPECT_FLOAT_EQ(ds[1], -0.5f * 7 / 9);
}

TEST(ExitRules, ImLossWeights) {
  const float ce[3] = {3.0f, 2.0f, 1.0f}, p[3] = {0.1f, 0.3f, 0.2f};
  float w[3];
  im_weights(ImLoss::Warmup, ce, p, 3, w);  // G + 1 - l: earlier exits weigh more
  EXPECT_EQ(w[0], 4.0f);
  EXPECT_EQ(w[1], 3.0f);
  EXPECT_EQ(w[2], 2.0f);
  im_weights(ImLoss::Code, ce, p, 3, w);
  for (int l = 0; l < 3; ++l) EXPECT_EQ(w[l], 1.0f) << l;
  // S = 6, R = 0.3 + 0.6 + 0.2 = 1.1: w = p * 6 / 1.1, so sum w ce = S.
  im_weights(ImLoss::Intent, ce, p, 3, w);
  EXPECT_FLOAT_EQ(w[0], 0.1f * 6 / 1.1f);
  EXPECT_FLOAT_EQ(w[2], 0.2f * 6 / 1.1f);
  EXPECT_NEAR(w[0] * ce[0] + w[1] * ce[1] + w[2] * ce[2], 6.0, 1e-5);
}

// d 8, V 13, T 5 (mean context 3), 3 dense blocks of d_ff 16: a block 8 d^2 + 4 * 3 d + 4 d d_ff
// = 1120, the head 2 d V = 208, an exit the head + 9 V + 8 = 333, a skipped block's K/V 4 d^2.
TEST(ExitRules, CostsByHand) {
  GptConfig c;
  c.vocab = 13, c.seq_len = 5, c.d_model = 8, c.n_layer = 3, c.d_ff = 16;
  const std::vector<double> backbone = exit_costs(c, {0, 1}, 1, false);
  ASSERT_EQ(backbone.size(), 3u);
  EXPECT_DOUBLE_EQ(backbone[0], (1120 + 2 * 256 + 208) / 3568.0);
  EXPECT_DOUBLE_EQ(backbone[1], (2 * 1120 + 256 + 208) / 3568.0);
  EXPECT_EQ(backbone[2], 1.0);
  const std::vector<double> jei = exit_costs(c, {0, 1}, 1, true);
  EXPECT_DOUBLE_EQ(jei[0], (1120 + 2 * 256 + 333) / 4234.0);
  EXPECT_DOUBLE_EQ(jei[1], (2 * 1120 + 256 + 2 * 333) / 4234.0);
  // A MoE block of 4 experts, top-2: the router 2 d E and two experts' 4 d d_ff.
  c.moe.num_experts = 4, c.moe.every = 2;
  const std::vector<double> moe = exit_costs(c, {0}, 2, false);
  const double moe_block = 8 * 64 + 4 * 3 * 8 + 2 * 8 * 4 + 2 * 4 * 8 * 16;
  EXPECT_DOUBLE_EQ(moe[0], (1120 + 2 * 256 + 208) / (2 * 1120 + moe_block + 208));
}

TEST(ExitRules, GateBceMatchesFiniteDifferences) {
  const int64_t T = 6;
  const int G = 3;
  std::vector<float> s(T * G), ds(T * G), unused(T * G);
  randn(s.data(), T * G, "exit-scores", 2.0f);
  const std::vector<int32_t> oracle = {0, 1, 2, 3, -1, 1};  // -1: padding
  const std::vector<float> w = {5.0f, 2.0f, 0.5f};
  gate_bce(s.data(), oracle.data(), T, G, w, double(5 * G), ds.data());
  check_gradient("gate_bce", s.data(), ds.data(), T * G, [&] {
    return gate_bce(s.data(), oracle.data(), T, G, w, double(5 * G), unused.data()) / (5 * G);
  });
  for (int l = 0; l < G; ++l) EXPECT_EQ(ds[4 * G + l], 0.0f);
}

// A 3-block model with exits after blocks 0 and 1, random parameters and gates.
struct Fixture {
  GptConfig c;
  ParamRegistry reg, heads, gates;
  std::unique_ptr<Gpt> model;
  std::unique_ptr<ExitHeads> exits;
  std::vector<int32_t> tok, tgt;
  Arena arena;
  Fixture() {
    c.vocab = 13, c.seq_len = 5, c.d_model = 8, c.n_layer = 3, c.n_head = 2, c.d_ff = 16;
    model = std::make_unique<Gpt>(c, reg);
    exits = std::make_unique<ExitHeads>(heads, gates, c, std::vector<int>{0, 1});
    reg.allocate(), heads.allocate(), gates.allocate();
    reg.initialize(3);
    randn(reg.values(), reg.total_elements(), "exit-backbone", 0.5f);
    exits->copy_embedding(reg.value(model->wte()));
    randn(heads.values(), heads.total_elements(), "exit-heads", 0.3f);
    randn(gates.values(), gates.total_elements(), "exit-gates", 1.0f);
    for (int i = 0; i < 10; ++i) tok.push_back((i * 7) % 13), tgt.push_back((i * 5 + 1) % 13);
    tgt[3] = -1;  // one padded target
  }
  ExitHeads::Pass pass() {
    arena.reset();
    Gpt::Activations acts;
    const Tensor tokens{tok.data(), {2, 5}, DType::I32};
    const Tensor logits = model->forward(arena, tokens, acts);
    return exits->forward(arena, *model, acts, logits, Tensor{tgt.data(), {10}, DType::I32});
  }
};

TEST(Exits, HeadsMatchFiniteDifferencesForEveryImLoss) {
  for (ImLoss kind : {ImLoss::Warmup, ImLoss::Code, ImLoss::Intent}) {
    Fixture f;
    const int G = 2;
    const double normalizer = 9 * G;
    ExitHeads::Pass base = f.pass();
    // The weights at the base point, held constant (the intent loss's ratio is detached).
    std::vector<float> w(10 * G);
    for (int t = 0; t < 10; ++t)
      im_weights(kind, base.ce.data() + t * (G + 1), base.p.data() + t * G, G, w.data() + t * G);
    f.heads.zero_grads();
    f.exits->heads_backward(base, kind, normalizer);
    const std::vector<float> grads(f.heads.grads(), f.heads.grads() + f.heads.total_elements());
    auto loss = [&] {
      const ExitHeads::Pass p = f.pass();
      double sum = 0;
      for (int t = 0; t < 10; ++t)
        if (p.counted[t])
          for (int l = 0; l < G; ++l) sum += double(w[t * G + l]) * p.ce[t * (G + 1) + l];
      return sum / normalizer;
    };
    for (const auto& p : f.heads.all())
      check_gradient(p.name + " " + std::to_string(int(kind)), f.heads.values() + p.offset,
                     grads.data() + p.offset, p.shape.numel(), loss, 30, 1e-2);
  }
}

// The authors' IM loss mean_{t,l}(P CE r), r = sum CE / sum P CE not detached: its gradient is
// the plain mean's, which ImLoss::Code computes.
TEST(Exits, CodeLossIsTheAuthorsLossWhoseWeightingCancels) {
  Fixture f;
  const int G = 2;
  const ExitHeads::Pass base = f.pass();
  double spread = 0;  // the gates' P differ between exits and tokens: the weighting is real
  for (int t = 0; t < 10; ++t) spread += std::abs(base.p[t * G] - base.p[t * G + 1]);
  EXPECT_GT(spread, 0.5);
  f.heads.zero_grads();
  f.exits->heads_backward(base, ImLoss::Code, 9.0 * G);
  const std::vector<float> grads(f.heads.grads(), f.heads.grads() + f.heads.total_elements());
  auto authors = [&] {
    const ExitHeads::Pass p = f.pass();
    double sum = 0;
    for (int t = 0; t < 10; ++t) {
      if (!p.counted[t]) continue;
      double S = 0, R = 0;
      for (int l = 0; l < G; ++l)
        S += p.ce[t * (G + 1) + l], R += p.p[t * G + l] * p.ce[t * (G + 1) + l];
      for (int l = 0; l < G; ++l) sum += p.p[t * G + l] * p.ce[t * (G + 1) + l] * S / R;
    }
    return sum / (9.0 * G);
  };
  for (const auto& p : f.heads.all())
    check_gradient("authors " + p.name, f.heads.values() + p.offset, grads.data() + p.offset,
                   p.shape.numel(), authors, 30, 1e-2);
}

TEST(Exits, GatesMatchFiniteDifferences) {
  Fixture f;
  const int G = 2;
  const ExitHeads::Pass base = f.pass();
  std::vector<int32_t> oracle(10);
  const std::vector<double> cost = {0.4, 0.7, 1.0};
  for (int t = 0; t < 10; ++t)
    oracle[t] = base.counted[t] ? oracle_exit(base.ce.data() + t * (G + 1), cost, 0.3) : -1;
  const std::vector<float> w = {2.0f, 0.7f};
  std::vector<float> ds(10 * G);
  gate_bce(base.score.data(), oracle.data(), 10, G, w, 9.0 * G, ds.data());
  f.gates.zero_grads();
  f.exits->gates_backward(base, ds.data());
  const std::vector<float> grads(f.gates.grads(), f.gates.grads() + f.gates.total_elements());
  auto loss = [&] {
    const ExitHeads::Pass p = f.pass();
    std::vector<float> unused(10 * G);
    return gate_bce(p.score.data(), oracle.data(), 10, G, w, 9.0 * G, unused.data()) / (9.0 * G);
  };
  check_gradient("gates", f.gates.values(), grads.data(), f.gates.total_elements(), loss);
}

// An exit whose head is the tied embedding predicts what the backbone cut after its block does.
TEST(Exits, AnExitWithTheEmbeddingAsHeadIsTheBackboneCutThere) {
  Fixture f;
  f.exits->copy_embedding(f.reg.value(f.model->wte()));
  for (const auto& p : f.heads.all())
    if (p.name.ends_with("/head/b"))
      std::fill_n(f.heads.values() + p.offset, p.shape.numel(), 0.0f);
  const ExitHeads::Pass pass = f.pass();
  GptConfig cut = f.c;
  cut.n_layer = 2;  // blocks 0 and 1: exit 1's
  ParamRegistry reg;
  const Gpt model(cut, reg);
  reg.allocate();
  for (const auto& p : reg.all())
    ops::copy(f.reg.value(f.reg.find(p.name)), reg.value(reg.find(p.name)));
  Arena arena;
  Gpt::Activations acts;
  Tensor logits = model.forward(arena, Tensor{f.tok.data(), {2, 5}, DType::I32}, acts);
  Tensor losses = arena.alloc({10});
  int64_t count = 0;
  ops::cross_entropy(logits, Tensor{f.tgt.data(), {10}, DType::I32}, logits, losses, 1.0f, &count);
  EXPECT_EQ(count, 9);
  for (int t = 0; t < 10; ++t) EXPECT_NEAR(pass.ce[t * 3 + 1], losses.f32()[t], 1e-5) << t;
}

// CALM's state propagation (moetrain exits --kv propagate): tokens that leave after block 0
// keep their state through blocks 1 and 2, the later blocks take their keys and values from it,
// and no expert of those blocks gets them, for a gate with capacity (Switch) and one without
// (DSelect-k). The reference runs the blocks one by one on every token and puts the leavers'
// state back after each block.
TEST(Exits, ALeavingTokenKeepsItsStateAndReachesNoLaterExpert) {
  for (const char* gate : {"switch", "dselect_k"}) {
    GptConfig c;
    c.vocab = 13, c.seq_len = 5, c.d_model = 8, c.n_layer = 3, c.n_head = 2, c.d_ff = 16;
    c.moe.num_experts = 4, c.moe.every = 1, c.moe.dropless = true, c.moe.gate = gate;
    ParamRegistry reg;
    const Gpt model(c, reg);
    reg.allocate();
    reg.initialize(4);
    randn(reg.values(), reg.total_elements(), "propagate", 0.5f);
    MpiGroup self(MPI_COMM_SELF, "self");
    FlatAllToAll a2a(self);
    std::vector<int32_t> tok;
    for (int i = 0; i < 10; ++i) tok.push_back((i * 7) % 13);
    const Tensor tokens{tok.data(), {2, 5}, DType::I32};
    const std::vector<int> gone = {0, 7};  // the first of sequence 0, the third of sequence 1
    std::vector<uint8_t> alive(10, 1);
    PassContext ctx{.a2a = &a2a, .route = {.training = false}};
    Arena arena;
    Gpt::Activations full;
    model.forward(arena, tokens, full, ctx);
    ctx.route.alive = alive.data();
    Gpt::Activations acts;
    model.forward(arena, tokens, acts, ctx, [&](int i, const Tensor&) {
      if (i == 0)
        for (int t : gone) alive[t] = 0;
    });
    // The reference, from the embeddings of the full pass (block 0's input).
    Tensor x = full.blocks[0].ln1.x, kept;
    PassContext pass = full.pass;
    for (int i = 0; i < 3; ++i) {
      const std::string at = std::string(gate) + " block " + std::to_string(i);
      Block::Cache cache;
      pass.route.layer = i;
      x = model.block(i).forward(arena, x, cache, pass);
      if (i == 0) kept = x;
      for (int t : gone) std::copy_n(kept.f32() + t * 8, 8, x.f32() + t * 8);
      const Tensor got = model.block_output(acts, i), whole = model.block_output(full, i);
      double moved = 0;
      for (int64_t j = 0; j < x.numel(); ++j) {
        EXPECT_NEAR(got.f32()[j], x.f32()[j], 1e-6) << at << " element " << j;
        moved += std::abs(got.f32()[j] - whole.f32()[j]);
      }
      if (i > 0) {
        EXPECT_GT(moved, 1e-3) << at << ": as if nothing had left";
      }
      // The rows sent to experts: the reference's choices of the tokens still there.
      const Routing& r = cache.moe.routing;
      int want = 0, rows = 0;
      for (int64_t j = 0; j < r.expert.numel(); ++j)
        want += r.expert.i32()[j] >= 0 && (i == 0 || (j / r.k != 0 && j / r.k != 7));
      for (int n : acts.blocks[i].moe.send_rows) rows += n;
      EXPECT_EQ(rows, want) << at;
      EXPECT_GT(want, i == 0 ? 9 : 7) << at;  // every token to at least one expert
    }
  }
}

}  // namespace
}  // namespace mt
