// Every layer's backward against central finite differences of a random projection of its output.
#include <gtest/gtest.h>

#include <bit>

#include <vector>

#include "gradcheck.hpp"
#include "io/h5.hpp"
#include "model/attention.hpp"
#include "model/dropout.hpp"
#include "model/embedding.hpp"
#include "model/ffn.hpp"
#include "model/layernorm.hpp"
#include "model/linear.hpp"
#include "model/loss.hpp"
#include "tensor/ops.hpp"
#include "tensor/ops/bf16.hpp"
#include "tensor/ops/fast_math.hpp"
#include "tensor/ops/sgemm.hpp"

namespace mt {
namespace {

using test::check_gradient;
using test::project;
using test::randn;

// A layer under test: its registry, an input, and forward/backward closures.
struct Case {
  ParamRegistry reg;
  Arena arena;
  std::vector<float> x, r;
  Shape xs;
  Tensor input() { return Tensor{x.data(), xs}; }
};

// Checks dL/dx and dL/dparam for every parameter of a layer with
// forward(arena, x) -> y and backward(arena, dy) -> dx.
void check_layer(Case& c, const std::function<Tensor(Arena&, const Tensor&)>& forward,
                 const std::function<Tensor(Arena&, const Tensor&)>& backward, const char* name) {
  c.reg.initialize(5);
  // Move every parameter off its init so that zero-initialised biases and unit gains are generic.
  randn(c.reg.values(), c.reg.total_elements(), "params", 0.3f);
  randn(c.x.data(), int64_t(c.x.size()), "x");
  c.arena.reset();
  Tensor y = forward(c.arena, c.input());
  c.r.resize(y.numel());
  randn(c.r.data(), y.numel(), "r");
  c.reg.zero_grads();
  Tensor dy{c.r.data(), y.shape};
  Tensor dx = backward(c.arena, dy);
  std::vector<float> dx_copy(dx.f32(), dx.f32() + dx.numel());
  auto loss = [&] {
    c.arena.reset();
    return project(forward(c.arena, c.input()), c.r);
  };
  check_gradient(std::string(name) + ".x", c.x.data(), dx_copy.data(), int64_t(c.x.size()), loss);
  std::vector<float> grads(c.reg.grads(), c.reg.grads() + c.reg.total_elements());
  for (const auto& p : c.reg.all())
    check_gradient(std::string(name) + "." + p.name, c.reg.values() + p.offset,
                   grads.data() + p.offset, p.shape.numel(), loss);
}

TEST(Layers, LinearMatchesFiniteDifferences) {
  Case c;
  Linear layer(c.reg, "lin", 6, 5, 0.3f);
  c.reg.allocate();
  c.xs = {2, 3, 6};
  c.x.resize(c.xs.numel());
  Linear::Cache cache;
  check_layer(
      c, [&](Arena& a, const Tensor& x) { return layer.forward(a, x, cache); },
      [&](Arena& a, const Tensor& dy) { return layer.backward(a, dy, cache); }, "linear");
}

TEST(Layers, LayerNormMatchesFiniteDifferences) {
  Case c;
  LayerNorm layer(c.reg, "ln", 7);
  c.reg.allocate();
  c.xs = {5, 7};
  c.x.resize(c.xs.numel());
  LayerNorm::Cache cache;
  check_layer(
      c, [&](Arena& a, const Tensor& x) { return layer.forward(a, x, cache); },
      [&](Arena& a, const Tensor& dy) {
        Tensor dx = a.zeros(cache.x.shape);
        layer.backward(dy, cache, dx);
        return dx;
      },
      "layernorm");
}

TEST(Layers, LayerNormBackwardAccumulatesIntoDx) {
  Case c;
  LayerNorm layer(c.reg, "ln", 4);
  c.reg.allocate();
  c.reg.initialize(1);
  std::vector<float> x(12), dy(12);
  randn(x.data(), 12, "x");
  randn(dy.data(), 12, "dy");
  LayerNorm::Cache cache;
  layer.forward(c.arena, Tensor{x.data(), {3, 4}}, cache);
  Tensor fresh = c.arena.zeros({3, 4}), ones = c.arena.alloc({3, 4});
  ops::fill(ones, 1.0f);
  layer.backward(Tensor{dy.data(), {3, 4}}, cache, fresh);
  layer.backward(Tensor{dy.data(), {3, 4}}, cache, ones);
  for (int i = 0; i < 12; ++i) EXPECT_NEAR(ones.f32()[i], 1.0f + fresh.f32()[i], 1e-6);
}

TEST(Layers, FfnMatchesFiniteDifferences) {
  Case c;
  Ffn layer(c.reg, "ffn", 6, 10, 0.3f);
  c.reg.allocate();
  c.xs = {4, 6};
  c.x.resize(c.xs.numel());
  Ffn::Cache cache;
  check_layer(
      c, [&](Arena& a, const Tensor& x) { return layer.forward(a, x, cache); },
      [&](Arena& a, const Tensor& dy) { return layer.backward(a, dy, cache); }, "ffn");
}

// Without dropout, and with dropout on the probabilities under a fixed mask (a pure function of
// the pass context).
TEST(Layers, AttentionMatchesFiniteDifferences) {
  RouteContext pass;
  pass.seed = 4;
  pass.step = 2;
  pass.first_token = 15;  // sequences 3 and 4 of the global batch
  for (float p : {0.0f, 0.3f}) {
    Case c;
    Attention layer(c.reg, "attn", 8, 2, 0.3f);
    c.reg.allocate();
    c.xs = {2, 5, 8};
    c.x.resize(c.xs.numel());
    Attention::Cache cache;
    const DropoutSite site{p, &pass, 1, "attn-probs"};
    check_layer(
        c, [&](Arena& a, const Tensor& x) { return layer.forward(a, x, cache, site); },
        [&](Arena& a, const Tensor& dy) { return layer.backward(a, dy, cache); },
        p > 0 ? "attention-dropout" : "attention");
    ASSERT_EQ(cache.mask.empty(), p == 0);
    int zeros = 0;
    for (int64_t i = 0; p > 0 && i < cache.mask.numel(); ++i) zeros += cache.mask.f32()[i] == 0;
    EXPECT_EQ(zeros > 0, p > 0) << "dropped probabilities at p = " << p;
  }
}

// Masks: the rate, the scale, a pure function of the global element, and independent between
// purposes, layers, passes and steps; none at evaluation.
TEST(Dropout, MasksKeepAtTheRateScaledAndArePureFunctionsOfThePosition) {
  Arena arena;
  RouteContext pass;
  pass.seed = 7;
  const int64_t n = 200000;
  const DropoutSite site{0.3f, &pass, 2, "ffn-out"};
  const Tensor m = dropout_mask(arena, site, {n}, 0);
  int64_t zeros = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float v = m.f32()[i];
    zeros += v == 0.0f;
    if (v != 0.0f) {
      ASSERT_EQ(v, 1.0f / 0.7f);
    }
  }
  EXPECT_NEAR(double(zeros) / n, 0.3, 0.005);  // 0.3 +- 5 standard deviations
  const Tensor part = dropout_mask(arena, site, {50}, 1001);
  for (int64_t i = 0; i < 50; ++i) ASSERT_EQ(part.f32()[i], m.f32()[1001 + i]);
  auto differs = [&](const DropoutSite& other) {
    const Tensor o = dropout_mask(arena, other, {1000}, 0);
    int d = 0;
    for (int64_t i = 0; i < 1000; ++i) d += o.f32()[i] != m.f32()[i];
    return d;
  };
  EXPECT_GT(differs({0.3f, &pass, 2, "attn-out"}), 200);
  EXPECT_GT(differs({0.3f, &pass, 3, "ffn-out"}), 200);
  RouteContext second = pass;
  second.pass = 1;
  EXPECT_GT(differs({0.3f, &second, 2, "ffn-out"}), 200);
  RouteContext next = pass;
  next.step = 1;
  EXPECT_GT(differs({0.3f, &next, 2, "ffn-out"}), 200);
  RouteContext eval = pass;
  eval.training = false;
  EXPECT_TRUE(dropout_mask(arena, {0.3f, &eval, 2, "ffn-out"}, {n}, 0).empty());
}

// fairseq's label-smoothed cross-entropy against PyTorch's cross_entropy(label_smoothing =
// eps V / (V - 1)) on the fixture from make_torch_fixture.py: every row's loss and the gradient.
TEST(Layers, LabelSmoothedCrossEntropyMatchesPyTorch) {
  h5::File f(MT_SOURCE_DIR "/tests/fixtures/label_smoothing.h5", h5::File::Read);
  const Shape s = h5::shape_of(f, "/logits");
  const int64_t N = s[0], V = s[1];
  std::vector<float> logits(N * V), want_grad(N * V), want_loss(N), losses(N);
  h5::read(f, "/logits", logits.data(), s);
  h5::read(f, "/grad", want_grad.data(), s);
  h5::read(f, "/losses", want_loss.data(), {N});
  std::vector<int32_t> targets = h5::read_i32(f, "/targets");
  const float eps = float(h5::attr_double(f, "/", "epsilon"));
  int64_t count = 0;
  const double total =
      ops::cross_entropy(Tensor{logits.data(), s}, Tensor{targets.data(), {N}, DType::I32},
                         Tensor{logits.data(), s}, Tensor{losses.data(), {N}}, 1.0f, &count, eps);
  EXPECT_EQ(count, N - 1);
  double want_total = 0;
  for (int64_t i = 0; i < N; ++i) {
    EXPECT_NEAR(losses[i], want_loss[i], 1e-5 * std::max(1.0f, want_loss[i])) << "row " << i;
    want_total += want_loss[i];
  }
  EXPECT_NEAR(total, want_total, 1e-5 * want_total);
  for (int64_t i = 0; i < N * V; ++i) EXPECT_NEAR(logits[i], want_grad[i], 1e-6) << i;
}

TEST(Layers, AttentionIsCausal) {
  // Changing the last position's input must not change any earlier output.
  ParamRegistry reg;
  Attention layer(reg, "attn", 8, 2, 0.3f);
  reg.allocate();
  reg.initialize(3);
  Arena arena;
  std::vector<float> x(1 * 6 * 8);
  randn(x.data(), int64_t(x.size()), "x");
  Attention::Cache cache;
  Tensor y1 = layer.forward(arena, Tensor{x.data(), {1, 6, 8}}, cache);
  std::vector<float> before(y1.f32(), y1.f32() + y1.numel());
  for (int j = 0; j < 8; ++j) x[5 * 8 + j] += 1.0f;
  Tensor y2 = layer.forward(arena, Tensor{x.data(), {1, 6, 8}}, cache);
  for (int i = 0; i < 5 * 8; ++i) EXPECT_EQ(before[i], y2.f32()[i]) << i;
  double diff = 0;
  for (int i = 5 * 8; i < 6 * 8; ++i) diff += std::abs(before[i] - y2.f32()[i]);
  EXPECT_GT(diff, 1e-3);
}

TEST(Ops, AttentionBlocksMatchADoubleLoop) {
  // Attention's causal blocks of 64 queries (T = 150: two whole blocks and a part; their products
  // stop at the block's last key) against the whole square in double precision, forward and
  // backward, without and with a dropout mask: fp32 within 2e-5 of each output's magnitude, bf16
  // (where the CPU has AVX512_BF16; each operand rounded once) within 2^-6 and not equal.
  const int64_t B = 2, T = 150, H = 2, hd = 8, d = H * hd;
  std::vector<float> qkv(B * T * 3 * d), dout(B * T * d), mask(B * H * T * T);
  randn(qkv.data(), int64_t(qkv.size()), "qkv");
  randn(dout.data(), int64_t(dout.size()), "dout");
  for (size_t i = 0; i < mask.size(); ++i) mask[i] = i % 5 == 2 ? 0.0f : 1.25f;
  for (const bool dropout : {false, true})
    for (const bool bf16 : {false, true}) {
      if (bf16 && !cpu::bf16_supported()) continue;
      ops::set_bf16_matmul(bf16);
      std::vector<float> out(B * T * d), probs(B * H * T * T), dropped(probs.size()),
          scratch(probs.size()), dqkv(qkv.size());
      const Tensor m = dropout ? Tensor{mask.data(), {B, H, T, T}} : Tensor{},
                   w = dropout ? Tensor{dropped.data(), {B, H, T, T}} : Tensor{};
      ops::attention_forward(Tensor{qkv.data(), {B, T, 3 * d}}, int(H),
                             Tensor{out.data(), {B, T, d}}, Tensor{probs.data(), {B, H, T, T}}, m,
                             w);
      ops::attention_backward(Tensor{dout.data(), {B, T, d}}, Tensor{qkv.data(), {B, T, 3 * d}},
                              Tensor{probs.data(), {B, H, T, T}}, int(H),
                              Tensor{dqkv.data(), {B, T, 3 * d}},
                              Tensor{scratch.data(), {B, H, T, T}}, m, w);
      ops::set_bf16_matmul(false);
      const double tol = bf16 ? 1.0 / 64 : 2e-5;
      double worst = 0;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h) {
          auto at = [&](int64_t t, int part, int64_t c) {
            return (b * T + t) * 3 * d + part * d + h * hd + c;
          };
          auto mk = [&](int64_t i, int64_t j) {
            return dropout ? double(mask[((b * H + h) * T + i) * T + j]) : 1.0;
          };
          std::vector<double> P(T * T, 0.0), dS(T * T, 0.0), want(3 * T * hd, 0.0), o(T * hd, 0.0);
          for (int64_t i = 0; i < T; ++i) {
            double mx = -1e300, sum = 0;
            for (int64_t j = 0; j <= i; ++j) {
              double s = 0;
              for (int64_t c = 0; c < hd; ++c) s += double(qkv[at(i, 0, c)]) * qkv[at(j, 1, c)];
              P[i * T + j] = s / std::sqrt(double(hd));
              mx = std::max(mx, P[i * T + j]);
            }
            for (int64_t j = 0; j <= i; ++j) sum += P[i * T + j] = std::exp(P[i * T + j] - mx);
            for (int64_t j = 0; j <= i; ++j) P[i * T + j] /= sum;
            for (int64_t j = 0; j <= i; ++j)
              for (int64_t c = 0; c < hd; ++c)
                o[i * hd + c] += P[i * T + j] * mk(i, j) * qkv[at(j, 2, c)];
            // dP = (dO V^T) * mask; dS = P (dP - rowsum(dP P)); dV = W^T dO
            double dot = 0;
            for (int64_t j = 0; j <= i; ++j) {
              double s = 0;
              for (int64_t c = 0; c < hd; ++c)
                s += double(dout[(b * T + i) * d + h * hd + c]) * qkv[at(j, 2, c)];
              dS[i * T + j] = s * mk(i, j);
              dot += dS[i * T + j] * P[i * T + j];
              for (int64_t c = 0; c < hd; ++c)
                want[(2 * T + j) * hd + c] +=
                    P[i * T + j] * mk(i, j) * dout[(b * T + i) * d + h * hd + c];
            }
            for (int64_t j = 0; j <= i; ++j) dS[i * T + j] = P[i * T + j] * (dS[i * T + j] - dot);
          }
          for (int64_t i = 0; i < T; ++i)
            for (int64_t j = 0; j <= i; ++j)
              for (int64_t c = 0; c < hd; ++c) {
                want[i * hd + c] += dS[i * T + j] * qkv[at(j, 1, c)] / std::sqrt(double(hd));
                want[(T + j) * hd + c] += dS[i * T + j] * qkv[at(i, 0, c)] / std::sqrt(double(hd));
              }
          double omag = 0, gmag = 0;
          for (double v : o) omag = std::max(omag, std::abs(v));
          for (double v : want) gmag = std::max(gmag, std::abs(v));
          for (int64_t i = 0; i < T; ++i) {
            for (int64_t j = 0; j < T; ++j) {
              const float p = probs[((b * H + h) * T + i) * T + j];
              if (j > i) {
                ASSERT_EQ(p, 0.0f) << i << "," << j;
              }
              ASSERT_NEAR(p, P[i * T + j], tol) << "bf16 " << bf16 << " at " << i << "," << j;
            }
            for (int64_t c = 0; c < hd; ++c) {
              const double got = out[(b * T + i) * d + h * hd + c];
              ASSERT_NEAR(got, o[i * hd + c], tol * omag)
                  << "bf16 " << bf16 << " dropout " << dropout;
              worst = std::max(worst, std::abs(got - o[i * hd + c]) / omag);
              for (int part = 0; part < 3; ++part) {
                const double g = dqkv[at(i, part, c)], wg = want[(part * T + i) * hd + c];
                ASSERT_NEAR(g, wg, tol * gmag) << "bf16 " << bf16 << " dropout " << dropout
                                               << " part " << part << " at " << i << "," << c;
              }
            }
          }
        }
      if (bf16) {
        EXPECT_GT(worst, 1e-5) << "no sign of bf16 operands";
      }
    }
}

TEST(Layers, EmbeddingMatchesFiniteDifferences) {
  Case c;
  Embedding layer(c.reg, 11, 6, 4);
  c.reg.allocate();
  c.reg.initialize(5);
  std::vector<int32_t> tok = {3, 7, 3, 0, 10, 3, 1, 7};  // repeated ids accumulate
  const Tensor tokens{tok.data(), {2, 4}, DType::I32};
  Tensor y = layer.forward(c.arena, tokens);
  c.r.resize(y.numel());
  randn(c.r.data(), y.numel(), "r");
  c.reg.zero_grads();
  layer.backward(tokens, Tensor{c.r.data(), y.shape});
  std::vector<float> grads(c.reg.grads(), c.reg.grads() + c.reg.total_elements());
  auto loss = [&] {
    c.arena.reset();
    return project(layer.forward(c.arena, tokens), c.r);
  };
  for (const auto& p : c.reg.all())
    check_gradient("embedding." + p.name, c.reg.values() + p.offset, grads.data() + p.offset,
                   p.shape.numel(), loss, 64);
}

TEST(Layers, CrossEntropyMatchesFiniteDifferences) {
  Arena arena;
  std::vector<float> logits(6 * 9), work(6 * 9);
  randn(logits.data(), int64_t(logits.size()), "logits", 2.0f);
  std::vector<int32_t> tgt = {0, 8, 3, -1, 4, 4};  // one ignored row
  const Tensor targets{tgt.data(), {6}, DType::I32};
  work = logits;
  const LossValue l = lm_loss(arena, Tensor{work.data(), {6, 9}}, targets);
  EXPECT_EQ(l.count, 5);
  const std::vector<float> grad = work;  // lm_loss turned logits into the gradient of the mean
  for (int j = 0; j < 9; ++j) EXPECT_EQ(grad[3 * 9 + j], 0.0f);
  auto loss = [&] {
    work = logits;
    return lm_loss(arena, Tensor{work.data(), {6, 9}}, targets).mean();
  };
  check_gradient("cross_entropy", logits.data(), grad.data(), int64_t(logits.size()), loss, 54,
                 1e-2, 2e-2, 1e-4);
}

TEST(Layers, ThorObjectiveMatchesFiniteDifferences) {
  // (CE(z1) + CE(z2) + alpha * CR(z1, z2)) / N, gradients with respect to both logits.
  Arena arena;
  std::vector<float> z1(5 * 7), z2(5 * 7), w1, w2;
  randn(z1.data(), 35, "thor-z1", 1.5f);
  randn(z2.data(), 35, "thor-z2", 1.5f);
  std::vector<int32_t> tgt = {1, 6, -1, 0, 3};
  const Tensor targets{tgt.data(), {5}, DType::I32};
  auto objective = [&](std::vector<float>& g1, std::vector<float>& g2) {
    g1 = z1;
    g2 = z2;
    const ThorLoss t =
        thor_loss(arena, Tensor{g1.data(), {5, 7}}, Tensor{g2.data(), {5, 7}}, targets, 2.0, 4.0);
    EXPECT_EQ(t.count, 4);
    return (t.ce_sum + 2.0 * t.cr_sum) / 4.0;
  };
  objective(w1, w2);
  const std::vector<float> g1 = w1, g2 = w2;
  auto loss = [&] { return objective(w1, w2); };
  check_gradient("thor.z1", z1.data(), g1.data(), 35, loss, 35, 1e-2, 2e-2, 1e-4);
  check_gradient("thor.z2", z2.data(), g2.data(), 35, loss, 35, 1e-2, 2e-2, 1e-4);
}

TEST(Layers, SymmetricKlHandComputed) {
  // Two classes: P1 = (1/4, 3/4) from z1 = (0, ln 3); P2 = (1/2, 1/2) from z2 = (0, 0).
  // CR = 0.5 * [(1/4 - 1/2) ln(1/2) + (3/4 - 1/2) ln(3/2)] = 0.5 * 0.25 * ln 3.
  std::vector<float> z1 = {0.0f, std::log(3.0f)}, z2 = {0.0f, 0.0f}, d1(2), d2(2), rows(1);
  std::vector<int32_t> t = {0};
  const double cr = ops::symmetric_kl(Tensor{z1.data(), {1, 2}}, Tensor{z2.data(), {1, 2}},
                                      Tensor{t.data(), {1}, DType::I32}, Tensor{d1.data(), {1, 2}},
                                      Tensor{d2.data(), {1, 2}}, Tensor{rows.data(), {1}}, 1.0f);
  EXPECT_NEAR(cr, 0.125 * std::log(3.0), 1e-6);
  // Equal distributions: zero, with zero gradients.
  const double zero = ops::symmetric_kl(
      Tensor{z1.data(), {1, 2}}, Tensor{z1.data(), {1, 2}}, Tensor{t.data(), {1}, DType::I32},
      Tensor{d1.data(), {1, 2}}, Tensor{d2.data(), {1, 2}}, Tensor{rows.data(), {1}}, 1.0f);
  EXPECT_NEAR(zero, 0.0, 1e-7);
  EXPECT_NEAR(d1[0], 0.0, 1e-7);
}

TEST(Layers, CrossEntropyHandComputed) {
  // Two classes, logits (0, ln 3): p = (1/4, 3/4); target 1 -> loss ln(4/3).
  Arena arena;
  std::vector<float> x = {0.0f, std::log(3.0f)};
  std::vector<int32_t> t = {1};
  const LossValue l = lm_loss(arena, Tensor{x.data(), {1, 2}}, Tensor{t.data(), {1}, DType::I32});
  EXPECT_NEAR(l.mean(), std::log(4.0 / 3.0), 1e-6);
  EXPECT_NEAR(x[0], 0.25, 1e-6);
  EXPECT_NEAR(x[1], -0.25, 1e-6);
}

TEST(Ops, BiasGeluMatchesKnownValuesAndFiniteDifferences) {
  std::vector<float> x = {-3.0f, -1.0f, -0.1f, 0.0f, 0.5f, 2.0f}, y(6), zero(6, 0.0f);
  ops::bias_gelu(Tensor{x.data(), {1, 6}}, Tensor{zero.data(), {6}}, Tensor{y.data(), {1, 6}});
  EXPECT_NEAR(y[3], 0.0, 1e-7);
  EXPECT_NEAR(y[5], 1.9545977, 1e-5);  // 0.5*2*(1+tanh(0.79788456*(2+0.35772)))
  EXPECT_NEAR(y[1], -0.15880801, 1e-5);

  // 130 columns: two of the backward's 64-column blocks and a remainder.
  const int64_t r = 3, c = 130, n = r * c;
  std::vector<float> in(n), bias(c), pre(n), act(n), proj(n), d(n), db(c, 0.5f), sums(c, 0.5f);
  randn(in.data(), n, "x", 2.0f);
  randn(bias.data(), c, "bias");
  randn(proj.data(), n, "r");
  auto loss = [&] {  // L = sum(gelu(x + bias) * r)
    pre = in;
    ops::bias_gelu(Tensor{pre.data(), {r, c}}, Tensor{bias.data(), {c}},
                   Tensor{act.data(), {r, c}});
    return project(Tensor{act.data(), {r, c}}, proj);
  };
  loss();
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(pre[i], in[i] + bias[i % c]);  // y is x + bias
  d = proj;
  ops::gelu_backward_bias(Tensor{pre.data(), {r, c}}, Tensor{d.data(), {r, c}},
                          Tensor{db.data(), {c}});
  // db accumulates the column sums of d (= dL/dpre), in sum_rows_accumulate's order.
  ops::sum_rows_accumulate(Tensor{d.data(), {r, c}}, Tensor{sums.data(), {c}});
  EXPECT_EQ(db, sums);
  for (int64_t j = 0; j < c; ++j) db[j] -= 0.5f;
  check_gradient("bias_gelu.x", in.data(), d.data(), n, loss);
  check_gradient("bias_gelu.bias", bias.data(), db.data(), c, loss);
}

TEST(Ops, AddLayerNormIsTheAddThenTheLayerNorm) {
  const int64_t r = 5, c = 7, n = r * c;
  std::vector<float> x(n), a(n), g(c), b(c), sum(n), y(n), m(r), s(r);
  randn(x.data(), n, "x");
  randn(a.data(), n, "a");
  randn(g.data(), c, "g");
  randn(b.data(), c, "b");
  ops::add_layernorm_forward(Tensor{x.data(), {r, c}}, Tensor{a.data(), {r, c}},
                             Tensor{sum.data(), {r, c}}, Tensor{g.data(), {c}},
                             Tensor{b.data(), {c}}, Tensor{y.data(), {r, c}}, Tensor{m.data(), {r}},
                             Tensor{s.data(), {r}});
  std::vector<float> sum2(n), y2(n), m2(r), s2(r);
  ops::add(Tensor{x.data(), {r, c}}, Tensor{a.data(), {r, c}}, Tensor{sum2.data(), {r, c}});
  ops::layernorm_forward(Tensor{sum2.data(), {r, c}}, Tensor{g.data(), {c}}, Tensor{b.data(), {c}},
                         Tensor{y2.data(), {r, c}}, Tensor{m2.data(), {r}}, Tensor{s2.data(), {r}});
  EXPECT_EQ(sum, sum2);
  EXPECT_EQ(y, y2);
  EXPECT_EQ(m, m2);
  EXPECT_EQ(s, s2);
}

TEST(Ops, FastExpAndTanhMatchLibm) {
  // Distance in units in the last place between two positive floats (their bit patterns order).
  auto ulps = [](float a, float b) {
    return std::abs(int64_t(std::bit_cast<int32_t>(a)) - int64_t(std::bit_cast<int32_t>(b)));
  };
  int64_t worst_exp = 0;
  double worst_tanh = 0;
  for (int i = -870000; i <= 880000; ++i) {
    const float x = i * 1e-4f;
    worst_exp = std::max(worst_exp, ulps(cpu::fast_exp(x), float(std::exp(double(x)))));
    if (std::abs(x) < 20)
      worst_tanh = std::max(worst_tanh, std::abs(cpu::fast_tanh(x) - std::tanh(double(x))));
  }
  EXPECT_LE(worst_exp, 1);  // against exp correctly rounded to float (measured: 1)
  EXPECT_LT(worst_tanh, 2e-7);
  EXPECT_EQ(cpu::fast_exp(-1000.0f), cpu::fast_exp(-87.0f));  // clamped, never NaN
  EXPECT_GT(cpu::fast_exp(1000.0f), 1e38f);
  EXPECT_TRUE(std::isnan(cpu::fast_exp(NAN)));  // a diverged input stays visible (UBSan-clean)
  EXPECT_TRUE(std::isnan(cpu::fast_tanh(NAN)));
}

TEST(Ops, MatmulTransposesAgainstHandComputation) {
  // a = [[1,2],[3,4]], b = [[5,6],[7,8]]
  std::vector<float> a = {1, 2, 3, 4}, b = {5, 6, 7, 8}, c(4);
  const Tensor ta{a.data(), {2, 2}}, tb{b.data(), {2, 2}}, tc{c.data(), {2, 2}};
  ops::matmul(ta, false, tb, false, tc);
  EXPECT_EQ(c, (std::vector<float>{19, 22, 43, 50}));
  ops::matmul(ta, true, tb, false, tc);
  EXPECT_EQ(c, (std::vector<float>{26, 30, 38, 44}));
  ops::matmul(ta, false, tb, true, tc);
  EXPECT_EQ(c, (std::vector<float>{17, 23, 39, 53}));
  ops::matmul(ta, false, tb, false, tc, 1.0f, 1.0f);
  EXPECT_EQ(c, (std::vector<float>{36, 45, 82, 103}));
}

// Sets the process's CPU GEMM library for one test.
struct GemmLibrary {
  explicit GemmLibrary(cpu::Gemm g) { cpu::set_gemm(g); }
  ~GemmLibrary() { cpu::set_gemm(cpu::Gemm::OneDnn); }
};

TEST(Ops, SgemmAgainstDoubleReference) {
  // Both libraries (oneDNN's and OpenBLAS's sgemm) on odd sizes, every transposition, alpha and
  // beta, leading dimensions wider than the rows (attention's head views), on the pool and inside
  // a parallel region (one call per thread), against a double-precision loop.
  const int64_t m = 37, n = 53, k = 71, pad = 5;
  for (const cpu::Gemm library : {cpu::Gemm::OneDnn, cpu::Gemm::OpenBlas})
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        for (const float beta : {0.0f, 1.0f}) {
          const GemmLibrary use(library);
          const int64_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
          std::vector<float> a((ta ? k : m) * lda), b((tb ? n : k) * ldb), c0(m * ldc);
          for (size_t i = 0; i < a.size(); ++i) a[i] = std::sin(0.37 * double(i));
          for (size_t i = 0; i < b.size(); ++i) b[i] = std::cos(0.11 * double(i));
          for (size_t i = 0; i < c0.size(); ++i) c0[i] = 0.5f - float(i % 7) / 7;
          auto A = [&](int64_t i, int64_t p) {
            return double(ta ? a[p * lda + i] : a[i * lda + p]);
          };
          auto B = [&](int64_t p, int64_t j) {
            return double(tb ? b[j * ldb + p] : b[p * ldb + j]);
          };
          std::vector<std::vector<float>> cs(4, c0);
#pragma omp parallel for num_threads(2)
          for (int t = 1; t < 4; ++t)  // three calls inside a parallel region
            cpu::sgemm(ta, tb, m, n, k, 0.5f, a.data(), lda, b.data(), ldb, beta, cs[t].data(),
                       ldc);
          cpu::sgemm(ta, tb, m, n, k, 0.5f, a.data(), lda, b.data(), ldb, beta, cs[0].data(), ldc);
          for (const auto& c : cs)
            for (int64_t i = 0; i < m; ++i)
              for (int64_t j = 0; j < ldc; ++j) {
                if (j >= n) {  // beyond the row: untouched
                  ASSERT_EQ(c[i * ldc + j], c0[i * ldc + j]);
                  continue;
                }
                double want = beta * c0[i * ldc + j], mag = std::abs(want);
                for (int64_t p = 0; p < k; ++p) {
                  want += 0.5 * A(i, p) * B(p, j);
                  mag += std::abs(0.5 * A(i, p) * B(p, j));
                }
                ASSERT_NEAR(c[i * ldc + j], want, 1e-6 * mag)
                    << cpu::gemm_name(library) << " ta " << ta << " tb " << tb << " beta " << beta
                    << " at " << i << "," << j;
              }
        }
}

TEST(Ops, SgemmWithoutProductsScalesC) {
  // k = 0 (an expert without tokens in a weight gradient): c = beta * c, on either library; with
  // beta = 0 c is not read (NaN there becomes 0). m or n = 0 writes nothing.
  for (const cpu::Gemm library : {cpu::Gemm::OneDnn, cpu::Gemm::OpenBlas}) {
    const GemmLibrary use(library);
    std::vector<float> c = {1, 2, 3, 4}, none;
    cpu::sgemm(false, false, 2, 2, 0, 1.0f, none.data(), 1, none.data(), 2, 0.5f, c.data(), 2);
    EXPECT_EQ(c, (std::vector<float>{0.5f, 1, 1.5f, 2})) << cpu::gemm_name(library);
    c[1] = std::nanf("");
    cpu::sgemm(true, true, 2, 2, 0, 1.0f, none.data(), 2, none.data(), 1, 0.0f, c.data(), 2);
    EXPECT_EQ(c, (std::vector<float>{0, 0, 0, 0})) << cpu::gemm_name(library);
    cpu::sgemm(false, false, 0, 2, 3, 1.0f, none.data(), 3, c.data(), 2, 0.0f, none.data(), 2);
    cpu::sgemm(false, false, 2, 0, 3, 1.0f, c.data(), 3, none.data(), 1, 0.0f, c.data(), 1);
    EXPECT_EQ(c, (std::vector<float>{0, 0, 0, 0})) << cpu::gemm_name(library);
  }
}

TEST(Ops, AutoGemmTakesOpenBlasOnlyOnItsZenKernels) {
  EXPECT_EQ(cpu::gemm_for_core("Zen"), cpu::Gemm::OpenBlas);
  for (const char* core : {"Cooperlake", "SkylakeX", "Haswell", "Prescott", "SapphireRapids"})
    EXPECT_EQ(cpu::gemm_for_core(core), cpu::Gemm::OneDnn) << core;
  EXPECT_FALSE(cpu::openblas_core().empty());
}

// Sets the process's matmul precision for one test.
struct Bf16Matmuls {
  Bf16Matmuls() { ops::set_bf16_matmul(true); }
  ~Bf16Matmuls() { ops::set_bf16_matmul(false); }
};

TEST(Ops, Bf16MatmulRoundsItsInputsAndAccumulatesInFp32) {
  // train.precision = bf16 on the CPU: every transposition, alpha and beta, wide leading
  // dimensions, on the pool and inside a parallel region, against a double-precision loop over
  // the inputs rounded to bf16 (tight: fp32 accumulation) and over the inputs themselves (within
  // bf16's rounding: 2^-8 of the magnitude). b is also read from its registered weight copy.
  std::string found;
  if (!cpu::bf16_supported(&found)) GTEST_SKIP() << "no AVX512_BF16 here: " << found;
  const Bf16Matmuls bf16;
  const int64_t m = 37, n = 53, k = 71, pad = 5;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      for (const float beta : {0.0f, 1.0f})
        for (const bool weights : {false, true}) {
          const int64_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
          std::vector<float> a((ta ? k : m) * lda), b((tb ? n : k) * ldb), c0(m * ldc);
          for (size_t i = 0; i < a.size(); ++i) a[i] = std::sin(0.37 * double(i));
          for (size_t i = 0; i < b.size(); ++i) b[i] = std::cos(0.11 * double(i));
          for (size_t i = 0; i < c0.size(); ++i) c0[i] = 0.5f - float(i % 7) / 7;
          if (weights) ops::prepare_bf16_weights(Tensor{b.data(), {int64_t(b.size())}});
          auto round = [](float x) { return double(cpu::from_bf16(cpu::to_bf16(x))); };
          auto A = [&](int64_t i, int64_t p) { return ta ? a[p * lda + i] : a[i * lda + p]; };
          auto B = [&](int64_t p, int64_t j) { return tb ? b[j * ldb + p] : b[p * ldb + j]; };
          std::vector<std::vector<float>> cs(4, c0);
#pragma omp parallel for num_threads(2)
          for (int t = 1; t < 4; ++t)
            cpu::sgemm(ta, tb, m, n, k, 0.5f, a.data(), lda, b.data(), ldb, beta, cs[t].data(),
                       ldc);
          cpu::sgemm(ta, tb, m, n, k, 0.5f, a.data(), lda, b.data(), ldb, beta, cs[0].data(), ldc);
          double largest_gap = 0;  // from the unrounded product, relative to the magnitude
          for (const auto& c : cs)
            for (int64_t i = 0; i < m; ++i)
              for (int64_t j = 0; j < ldc; ++j) {
                if (j >= n) {
                  ASSERT_EQ(c[i * ldc + j], c0[i * ldc + j]);
                  continue;
                }
                double rounded = beta * c0[i * ldc + j], exact = rounded, mag = std::abs(exact);
                for (int64_t p = 0; p < k; ++p) {
                  rounded += 0.5 * round(A(i, p)) * round(B(p, j));
                  exact += 0.5 * double(A(i, p)) * B(p, j);
                  mag += std::abs(0.5 * double(A(i, p)) * B(p, j));
                }
                ASSERT_NEAR(c[i * ldc + j], rounded, 1e-6 * mag)
                    << "ta " << ta << " tb " << tb << " beta " << beta << " at " << i << "," << j;
                ASSERT_NEAR(c[i * ldc + j], exact, std::ldexp(mag, -8));
                largest_gap = std::max(largest_gap, std::abs(c[i * ldc + j] - exact) / mag);
              }
          EXPECT_GT(largest_gap, 1e-4) << "no sign of bf16 inputs";
          ops::prepare_bf16_weights(Tensor{c0.data(), {1}});  // b's copy forgotten
        }
}

TEST(Ops, Bf16ActivationsAreTheRoundedFp32Ones) {
  // An activation its producer writes in bf16 (the FFN's GELU, ops::product_input_dtype) holds
  // the fp32 activation's bits rounded, and a product reading it equals the same product on the
  // fp32 activation rounded as it is read: bitwise, as a or b, either transposition, beta 0 and 1,
  // and with nothing to multiply (an expert's dW over no rows, k = 0: c = beta c; m = 0).
  const int64_t r = 37, c = 29;
  std::vector<float> pre(r * c), pre2, bias(c), act(r * c);
  std::vector<uint16_t> act16(r * c);
  randn(pre.data(), r * c, "pre", 2.0f);
  randn(bias.data(), c, "bias");
  pre2 = pre;
  ops::bias_gelu(Tensor{pre.data(), {r, c}}, Tensor{bias.data(), {c}}, Tensor{act.data(), {r, c}});
  ops::bias_gelu(Tensor{pre2.data(), {r, c}}, Tensor{bias.data(), {c}},
                 Tensor{act16.data(), {r, c}, DType::BF16});
  EXPECT_EQ(pre, pre2);
  for (int64_t i = 0; i < r * c; ++i) ASSERT_EQ(act16[i], cpu::to_bf16(act[i])) << i;
  EXPECT_EQ(ops::product_input_dtype(Device::CPU), DType::F32);
  if (!cpu::bf16_supported()) GTEST_SKIP() << "no AVX512_BF16 here";
  const Bf16Matmuls bf16;
  EXPECT_EQ(ops::product_input_dtype(Device::CPU), DType::BF16);
  const Tensor a32{act.data(), {r, c}}, a16{act16.data(), {r, c}, DType::BF16};
  std::vector<float> other(r * c);
  randn(other.data(), r * c, "other");
  for (const bool as_b : {false, true})
    for (const bool ta : {false, true})
      for (const bool tb : {false, true})
        for (const float beta : {0.0f, 1.0f}) {
          // The activation is [r, c]; the other operand has 5 rows or columns where free.
          const int64_t k = as_b ? (tb ? c : r) : (ta ? r : c);  // the product's inner size
          const bool t_other = as_b ? ta : tb;
          const Tensor o{other.data(), t_other != as_b ? Shape{5, k} : Shape{k, 5}};
          auto product = [&](const Tensor& act_t) {
            const Tensor& a = as_b ? o : act_t;
            const Tensor& b = as_b ? act_t : o;
            const int64_t m = ta ? a.size(1) : a.size(0), n = tb ? b.size(0) : b.size(1);
            std::vector<float> out(m * n, 0.25f);
            ops::matmul(a, ta, b, tb, Tensor{out.data(), {m, n}}, 0.5f, beta);
            return out;
          };
          const auto want = product(a32), got = product(a16);
          ASSERT_EQ(got, want) << "as b " << as_b << " ta " << ta << " tb " << tb;
        }
  std::vector<float> out = {1.0f, 2.0f};
  ops::matmul(Tensor{act16.data(), {0, 2}, DType::BF16}, true, Tensor{other.data(), {0, 1}}, false,
              Tensor{out.data(), {2, 1}}, 1.0f, 1.0f);
  EXPECT_EQ(out, (std::vector<float>{1.0f, 2.0f}));
  ops::matmul(Tensor{act16.data(), {0, 2}, DType::BF16}, true, Tensor{other.data(), {0, 1}}, false,
              Tensor{out.data(), {2, 1}});
  EXPECT_EQ(out, (std::vector<float>{0.0f, 0.0f}));
  ops::matmul(Tensor{act16.data(), {0, 3}, DType::BF16}, false, Tensor{other.data(), {3, 1}}, false,
              Tensor{out.data(), {0, 1}});
}

TEST(Ops, Bf16MatmulReadsTheWeightCopyUntilItIsRemade) {
  // A weight's bf16 copy is made once per pass: a change to the values shows after
  // prepare_bf16_weights, not before. Inside an Fp32Matmuls scope the values are read in fp32.
  if (!cpu::bf16_supported()) GTEST_SKIP() << "no AVX512_BF16 here";
  const Bf16Matmuls bf16;
  std::vector<float> w = {1.0f, 2.0f, 3.0f, 4.0f}, x = {1.0f, 1.0f}, y(2);
  const Tensor tw{w.data(), {2, 2}}, tx{x.data(), {1, 2}}, ty{y.data(), {1, 2}};
  ops::prepare_bf16_weights(Tensor{w.data(), {4}});
  w[0] = 1.0f + 1.0f / 1024;  // below bf16's resolution at 1: rounds back to 1
  w[1] = 10.0f;
  ops::matmul(tx, false, tw, false, ty);
  EXPECT_EQ(y, (std::vector<float>{4, 6}));  // the copy made before the change
  ops::prepare_bf16_weights(Tensor{w.data(), {4}});
  ops::matmul(tx, false, tw, false, ty);
  EXPECT_EQ(y, (std::vector<float>{4, 14}));
  {
    const ops::Fp32Matmuls fp32;
    ops::matmul(tx, false, tw, false, ty);
    EXPECT_EQ(y, (std::vector<float>{4.0f + 1.0f / 1024, 14}));
  }
  EXPECT_TRUE(ops::bf16_matmul());
  // A registered Buffer that is freed takes its copy with it (its memory may come back as
  // another operand): the registry's values in a Buffer, multiplied, changed, freed.
  {
    Buffer values(Device::CPU, 4);
    std::copy(w.begin(), w.end(), values.data());
    ops::prepare_bf16_weights(values.all());
    EXPECT_TRUE(cpu::bf16_weights_cover(values.data()));
    values.data()[1] = 20.0f;
    ops::matmul(tx, false, values.view({2, 2}), false, ty);
    EXPECT_EQ(y, (std::vector<float>{4, 14}));
    const float* freed = values.data();
    values = Buffer();
    EXPECT_FALSE(cpu::bf16_weights_cover(freed));
  }
}

TEST(Ops, Bf16MatmulReadsASharedOperandsCopyWhileItLives) {
  // An operand shared for several products is converted once: a change made while it is shared
  // does not show; after the scope, and for another operand, the values are converted again.
  if (!cpu::bf16_supported()) GTEST_SKIP() << "no AVX512_BF16 here";
  const Bf16Matmuls bf16;
  std::vector<float> w = {1.0f, 2.0f, 3.0f, 4.0f}, x = {1.0f, 1.0f}, x2 = {1.0f, 0.0f}, y(2);
  const Tensor tw{w.data(), {2, 2}}, tx{x.data(), {1, 2}}, tx2{x2.data(), {1, 2}},
      ty{y.data(), {1, 2}};
  {
    const ops::SharedBf16Operand shared(tx);
    x[1] = 2.0f;
    ops::matmul(tx, false, tw, false, ty);
    EXPECT_EQ(y, (std::vector<float>{4, 6}));  // x as it was shared: (1, 1)
    {
      const ops::SharedBf16Operand inner(tx2);  // nested: both read their copies
      x2[0] = 3.0f;
      ops::matmul(tx2, false, tw, false, ty);
      EXPECT_EQ(y, (std::vector<float>{1, 2}));
      ops::matmul(tx, false, tw, false, ty);
      EXPECT_EQ(y, (std::vector<float>{4, 6}));
    }
    ops::matmul(tx2, false, tw, false, ty);
    EXPECT_EQ(y, (std::vector<float>{3, 6}));  // unshared: converted again
  }
  ops::matmul(tx, false, tw, false, ty);
  EXPECT_EQ(y, (std::vector<float>{7, 10}));
}

TEST(Arena, ReusesOneBlockAfterTheFirstCycle) {
  Arena arena;
  for (int cycle = 0; cycle < 4; ++cycle) {
    arena.reset();
    for (int i = 0; i < 10; ++i) arena.alloc({1 << 18});  // 10 MiB per cycle, over several blocks
  }
  const size_t after_warmup = arena.system_allocations();
  for (int cycle = 0; cycle < 4; ++cycle) {
    arena.reset();
    for (int i = 0; i < 10; ++i) arena.alloc({1 << 18});
  }
  EXPECT_EQ(arena.system_allocations(), after_warmup);
  // One block of the cycle's 10 MiB plus 1/8 (growing blocks that doubled held 1+2+4+8 = 15).
  EXPECT_EQ(arena.capacity(), (size_t(10) << 20) + (size_t(10) << 20) / 8);
  EXPECT_EQ(arena.peak_bytes(), size_t(10) << 20);
}

TEST(Arena, ScopeFreesWhatWasMadeInsideIt) {
  Arena arena;
  for (int cycle = 0; cycle < 3; ++cycle) {
    arena.reset();
    const Tensor kept = arena.alloc({1 << 18});  // 1 MiB
    void* inside = nullptr;
    for (int block = 0; block < 4; ++block) {  // four "backward blocks" of 2 MiB temporaries each
      const Arena::Scope temporaries(arena);
      const Tensor a = arena.alloc({1 << 18});
      arena.alloc({1 << 18});
      EXPECT_NE(a.data, kept.data);
      if (block > 0) {
        EXPECT_EQ(a.data, inside);  // the same bytes each time
      }
      inside = a.data;
    }
    EXPECT_EQ(arena.alloc({1 << 18}).data, inside);  // and after the last scope
  }
  EXPECT_EQ(arena.peak_bytes(), size_t(3) << 20);  // kept + one scope's two, not kept + eight
  EXPECT_EQ(arena.capacity(), (size_t(3) << 20) + (size_t(3) << 20) / 8);
}

TEST(Rng, CounterBasedDrawsArePureFunctions) {
  const Rng a(7, stream_id({1, 2})), b(7, stream_id({1, 2})), c(7, stream_id({1, 3}));
  EXPECT_EQ(a.bits(123), b.bits(123));
  EXPECT_NE(a.bits(123), c.bits(123));
  double mean = 0, sq = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const double v = a.normal(i);
    mean += v / n;
    sq += v * v / n;
  }
  EXPECT_NEAR(mean, 0.0, 0.03);
  EXPECT_NEAR(sq, 1.0, 0.05);
  for (int i = 0; i < 1000; ++i) EXPECT_LT(a.below(i, 10), 10u);
}

}  // namespace
}  // namespace mt
