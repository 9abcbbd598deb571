// The whole GPT: loss and every gradient against PyTorch (fixture from make_torch_fixture.py),
// and against finite differences on a fresh random model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "gradcheck.hpp"
#include "io/checkpoint.hpp"
#include "io/h5.hpp"
#include "model/gpt.hpp"
#include "model/loss.hpp"
#include "train/progress.hpp"

namespace mt {
namespace {

struct Result {
  LossValue loss;
  std::vector<float> grads;
};

// Forward, loss and backward on one batch; returns the loss and a copy of every gradient.
Result forward_backward(const Gpt& model, ParamRegistry& reg, Arena& arena, const Tensor& tokens,
                        const Tensor& targets) {
  Gpt::Activations acts;
  arena.reset();
  reg.zero_grads();
  Tensor logits = model.forward(arena, tokens, acts);
  Result r;
  r.loss = lm_loss(arena, logits, targets);
  model.backward(arena, logits, acts);
  r.grads.assign(reg.grads(), reg.grads() + reg.total_elements());
  return r;
}

TEST(Gpt, LossAndEveryGradientMatchPyTorch) {
  const std::string path = MT_SOURCE_DIR "/tests/fixtures/gpt_tiny.h5";
  h5::File f(path, h5::File::Read);
  GptConfig c;
  c.vocab = h5::attr_int(f, "/", "vocab");
  c.seq_len = h5::attr_int(f, "/", "seq_len");
  c.d_model = h5::attr_int(f, "/", "d_model");
  c.n_layer = h5::attr_int(f, "/", "n_layer");
  c.n_head = h5::attr_int(f, "/", "n_head");
  c.d_ff = h5::attr_int(f, "/", "d_ff");
  const int64_t B = h5::attr_int(f, "/", "batch");
  ParamRegistry reg;
  const Gpt model(c, reg);
  reg.allocate();
  load_model(path, reg);  // the fixture is laid out as a checkpoint
  std::vector<int32_t> tok = h5::read_i32(f, "/tokens"), tgt = h5::read_i32(f, "/targets");
  double expected_loss = 0;
  {
    float l = 0;
    h5::read(f, "/loss", &l, {1});
    expected_loss = l;
  }
  Arena arena;
  const Result r =
      forward_backward(model, reg, arena, Tensor{tok.data(), {B, c.seq_len}, DType::I32},
                       Tensor{tgt.data(), {B * c.seq_len}, DType::I32});
  EXPECT_NEAR(r.loss.mean(), expected_loss, 1e-4 * std::abs(expected_loss));
  ASSERT_EQ(reg.size(), 4u + 12u * c.n_layer);
  for (const auto& p : reg.all()) {
    std::vector<float> want(p.shape.numel());
    h5::read(f, "/grad/" + p.name, want.data(), p.shape);
    double diff2 = 0, ref2 = 0, ref_max = 0;
    for (int64_t i = 0; i < p.shape.numel(); ++i) {
      const double d = r.grads[p.offset + i] - want[i];
      diff2 += d * d;
      ref2 += double(want[i]) * want[i];
      ref_max = std::max(ref_max, std::abs(double(want[i])));
    }
    ASSERT_GT(ref_max, 0.0) << p.name << ": the reference gradient is zero";
    // 1e-4 relative, measured on the tensor's norm and on every element against its largest.
    EXPECT_LE(std::sqrt(diff2 / ref2), 1e-4) << p.name;
    for (int64_t i = 0; i < p.shape.numel(); ++i)
      ASSERT_NEAR(r.grads[p.offset + i], want[i], 1e-4 * ref_max) << p.name << "[" << i << "]";
  }
}

// A random 2-block GPT on a fixed batch of 2 x 6 tokens.
struct TinyGpt {
  GptConfig c{
      .vocab = 23, .seq_len = 6, .d_model = 8, .n_layer = 2, .n_head = 2, .d_ff = 12, .moe = {}};
  ParamRegistry reg;
  std::unique_ptr<Gpt> model;
  std::vector<int32_t> tok = std::vector<int32_t>(12), tgt = std::vector<int32_t>(12);
  Tensor tokens{tok.data(), {2, 6}, DType::I32}, targets{tgt.data(), {12}, DType::I32};
  explicit TinyGpt(float dropout) {
    c.dropout = dropout;
    model = std::make_unique<Gpt>(c, reg);
    reg.allocate();
    reg.initialize(11);
    test::randn(reg.values(), reg.total_elements(), "gpt-params", 0.2f);
    const Rng r(3, 4);
    for (size_t i = 0; i < tok.size(); ++i) tok[i] = int32_t(r.below(i, 23));
    for (size_t i = 0; i < tgt.size(); ++i) tgt[i] = int32_t(r.below(100 + i, 23));
  }
  Tensor forward(Arena& arena, Gpt::Activations& acts, const PassContext& ctx) const {
    arena.reset();
    return model->forward(arena, tokens, acts, ctx);
  }
};

// Every parameter's gradient of the mean (label-smoothed) loss against finite differences; a
// training pass with dropout keeps the masks that ctx fixes.
void check_every_parameter(TinyGpt& g, const PassContext& ctx, float smoothing,
                           const std::string& what) {
  Arena arena;
  Gpt::Activations acts;
  g.reg.zero_grads();
  Tensor logits = g.forward(arena, acts, ctx);
  lm_loss(arena, logits, g.targets, 0, smoothing);
  g.model->backward(arena, logits, acts);
  const std::vector<float> grads(g.reg.grads(), g.reg.grads() + g.reg.total_elements());
  auto loss = [&] {
    Gpt::Activations a;
    Tensor z = g.forward(arena, a, ctx);
    return lm_loss(arena, z, g.targets, 0, smoothing).mean();
  };
  for (const auto& p : g.reg.all())
    test::check_gradient(what + "." + p.name, g.reg.values() + p.offset, grads.data() + p.offset,
                         p.shape.numel(), loss, 8, 1e-2, 3e-2, 3e-4);
}

TEST(Gpt, EveryParameterMatchesFiniteDifferences) {
  TinyGpt g(0.0f);
  check_every_parameter(g, {}, 0.0f, "gpt");
}

// Dropout at every place (embeddings, attention probabilities and output, FFN output) with the
// training pass's fixed masks, and label smoothing: every parameter against finite differences.
// At evaluation the same model gives dropout 0's logits bitwise.
TEST(Gpt, DropoutAndLabelSmoothingMatchFiniteDifferencesAndEvaluationIgnoresThem) {
  TinyGpt g(0.25f);
  PassContext ctx;
  ctx.route.seed = 5;
  ctx.route.step = 3;
  Arena arena;
  Gpt::Activations acts;
  g.forward(arena, acts, ctx);
  ASSERT_FALSE(acts.emb_mask.empty());
  check_every_parameter(g, ctx, 0.1f, "gpt-dropout");
  // Evaluation: no masks, the logits of the same weights without dropout.
  ctx.route.training = false;
  TinyGpt plain(0.0f);
  std::copy(g.reg.values(), g.reg.values() + g.reg.total_elements(), plain.reg.values());
  const Tensor z = g.forward(arena, acts, ctx);
  EXPECT_TRUE(acts.emb_mask.empty());
  Arena arena0;
  Gpt::Activations acts0;
  const Tensor z0 = plain.forward(arena0, acts0, ctx);
  EXPECT_TRUE(std::equal(z.f32(), z.f32() + z.numel(), z0.f32()));
}

TEST(Gpt, ForwardBackwardIsBitwiseRepeatable) {
  GptConfig c{
      .vocab = 31, .seq_len = 16, .d_model = 32, .n_layer = 2, .n_head = 4, .d_ff = 64, .moe = {}};
  ParamRegistry reg;
  const Gpt model(c, reg);
  reg.allocate();
  reg.initialize(5);
  std::vector<int32_t> tok(4 * 16), tgt(4 * 16);
  for (size_t i = 0; i < tok.size(); ++i)
    tok[i] = int32_t((i * 7) % 31), tgt[i] = int32_t((i * 5 + 3) % 31);
  const Tensor tokens{tok.data(), {4, 16}, DType::I32}, targets{tgt.data(), {64}, DType::I32};
  Arena arena;
  const Result a = forward_backward(model, reg, arena, tokens, targets);
  const Result b = forward_backward(model, reg, arena, tokens, targets);
  EXPECT_EQ(a.loss.sum, b.loss.sum);
  EXPECT_EQ(a.grads, b.grads);
}

TEST(Params, InitialisationIsKeyedByNameNotOrder) {
  ParamRegistry a, b;
  a.add("x", {3, 4}, Init::normal(0.02f));
  a.add("y", {5}, Init::normal(0.02f));
  b.add("y", {5}, Init::normal(0.02f));
  b.add("x", {3, 4}, Init::normal(0.02f));
  a.allocate();
  b.allocate();
  a.initialize(9);
  b.initialize(9);
  for (const char* n : {"x", "y"}) {
    const Tensor ta = a.value(a.find(n)), tb = b.value(b.find(n));
    for (int64_t i = 0; i < ta.numel(); ++i) EXPECT_EQ(ta.f32()[i], tb.f32()[i]);
  }
  EXPECT_FALSE(a.info(a.find("y")).decay);
  EXPECT_TRUE(a.info(a.find("x")).decay);
}

// The progress line against hand-written text: MoE fields only with MoE blocks, THOR's consistency
// only for THOR, percentages of shares.
TEST(Progress, LineShowsEachFieldWhereItApplies) {
  StepStats s{.step = 7,
              .total = 600,
              .ce = 4.56789,
              .aux = 0.01234,
              .consistency = 0.5,
              .lr = 2e-3,
              .grad_norm = 1.2345,
              .step_ms = 431.4,
              .tokens_per_s = 4747.6,
              .mfu = 0.3821,
              .dropped = 0.0123,
              .load_ratio = 1.426,
              .resident_mb = 312.4,
              .eta_s = 125,
              .clock = "2026-12-03 14:55:01"};
  EXPECT_EQ(progress_line(s),
            "step   7/600 | loss 4.5679 | lr 2.00e-03 | norm 1.234 | 431 ms |   4748 tok/s | MFU "
            "38.2% | 312 MB | ETA 2m05s | 2026-12-03 14:55:01");
  s.moe = s.thor = true;
  EXPECT_EQ(progress_line(s),
            "step   7/600 | loss 4.5679 | aux 0.0123 | cons 0.5000 | lr 2.00e-03 | norm 1.234 | "
            "431 ms |   4748 tok/s | MFU 38.2% | drop 1.2% | load 1.43 | 312 MB | ETA 2m05s | "
            "2026-12-03 14:55:01");
  EXPECT_GT(resident_mb(), 1.0);
  EXPECT_EQ(wall_clock().size(), 19u);
}

}  // namespace
}  // namespace mt
