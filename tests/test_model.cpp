// The whole GPT: loss and every gradient against PyTorch (fixture from make_torch_fixture.py),
// and against finite differences on a fresh random model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "gradcheck.hpp"
#include "io/checkpoint.hpp"
#include "io/h5.hpp"
#include "model/gpt.hpp"
#include "model/loss.hpp"

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

TEST(Gpt, EveryParameterMatchesFiniteDifferences) {
  GptConfig c{
      .vocab = 23, .seq_len = 6, .d_model = 8, .n_layer = 2, .n_head = 2, .d_ff = 12, .moe = {}};
  ParamRegistry reg;
  const Gpt model(c, reg);
  reg.allocate();
  reg.initialize(11);
  test::randn(reg.values(), reg.total_elements(), "gpt-params", 0.2f);
  std::vector<int32_t> tok(2 * 6), tgt(2 * 6);
  const Rng r(3, 4);
  for (size_t i = 0; i < tok.size(); ++i) tok[i] = int32_t(r.below(i, 23));
  for (size_t i = 0; i < tgt.size(); ++i) tgt[i] = int32_t(r.below(100 + i, 23));
  const Tensor tokens{tok.data(), {2, 6}, DType::I32}, targets{tgt.data(), {12}, DType::I32};
  Arena arena;
  const Result res = forward_backward(model, reg, arena, tokens, targets);
  auto loss = [&] {
    Gpt::Activations acts;
    arena.reset();
    Tensor logits = model.forward(arena, tokens, acts);
    return lm_loss(arena, logits, targets).mean();
  };
  for (const auto& p : reg.all())
    test::check_gradient("gpt." + p.name, reg.values() + p.offset, res.grads.data() + p.offset,
                         p.shape.numel(), loss, 8, 1e-2, 3e-2, 3e-4);
}

// Dropout at every place (embeddings, attention probabilities and output, FFN output) with the
// training pass's fixed masks, and label smoothing: every parameter against finite differences.
// At evaluation the same model gives dropout 0's logits bitwise.
TEST(Gpt, DropoutAndLabelSmoothingMatchFiniteDifferencesAndEvaluationIgnoresThem) {
  GptConfig c{
      .vocab = 23, .seq_len = 6, .d_model = 8, .n_layer = 2, .n_head = 2, .d_ff = 12, .moe = {}};
  c.dropout = 0.25f;
  ParamRegistry reg;
  const Gpt model(c, reg);
  reg.allocate();
  reg.initialize(11);
  test::randn(reg.values(), reg.total_elements(), "gpt-params", 0.2f);
  std::vector<int32_t> tok(2 * 6), tgt(2 * 6);
  const Rng r(3, 4);
  for (size_t i = 0; i < tok.size(); ++i) tok[i] = int32_t(r.below(i, 23));
  for (size_t i = 0; i < tgt.size(); ++i) tgt[i] = int32_t(r.below(100 + i, 23));
  const Tensor tokens{tok.data(), {2, 6}, DType::I32}, targets{tgt.data(), {12}, DType::I32};
  PassContext ctx;
  ctx.seed = 5;
  ctx.step = 3;
  Arena arena;
  Gpt::Activations acts;
  reg.zero_grads();
  Tensor logits = model.forward(arena, tokens, acts, ctx);
  lm_loss(arena, logits, targets, 0, 0.1f);
  model.backward(arena, logits, acts);
  const std::vector<float> grads(reg.grads(), reg.grads() + reg.total_elements());
  ASSERT_FALSE(acts.emb_mask.empty());
  auto loss = [&] {
    Gpt::Activations a;
    arena.reset();
    Tensor z = model.forward(arena, tokens, a, ctx);
    return lm_loss(arena, z, targets, 0, 0.1f).mean();
  };
  for (const auto& p : reg.all())
    test::check_gradient("gpt-dropout." + p.name, reg.values() + p.offset, grads.data() + p.offset,
                         p.shape.numel(), loss, 8, 1e-2, 3e-2, 3e-4);
  // Evaluation: no masks, the logits of the same weights without dropout.
  ctx.training = false;
  GptConfig plain = c;
  plain.dropout = 0;
  ParamRegistry reg0;
  const Gpt model0(plain, reg0);
  reg0.allocate();
  std::copy(reg.values(), reg.values() + reg.total_elements(), reg0.values());
  arena.reset();
  const Tensor z = model.forward(arena, tokens, acts, ctx);
  Arena arena0;
  Gpt::Activations acts0;
  const Tensor z0 = model0.forward(arena0, tokens, acts0, ctx);
  EXPECT_TRUE(acts.emb_mask.empty());
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

}  // namespace
}  // namespace mt
