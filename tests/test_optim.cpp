// AdamW against a hand computation; schedules, clipping and EvoMoE's temperature against their
// formulas.
#include <gtest/gtest.h>

#include <cmath>

#include "optim/adamw.hpp"
#include "optim/clip.hpp"
#include "optim/schedule.hpp"
#include "train/scheduler.hpp"

namespace mt {
namespace {

TEST(AdamW, TwoStepsMatchHandComputation) {
  ParamRegistry reg;
  const int w = reg.add("w", {1, 1}, Init::ones());  // a matrix: decayed
  const int b = reg.add("b", {1}, Init::ones());     // a bias: not decayed
  reg.allocate();
  reg.initialize(0);
  AdamW opt(reg, {.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.1f});
  float* pw = reg.value(w).f32();
  float* pb = reg.value(b).f32();
  float* gw = reg.grad(w).f32();
  float* gb = reg.grad(b).f32();

  // Step 1, g = 0.5: m = 0.05, v = 0.00025, mhat = 0.5, vhat = 0.25, mhat/sqrt(vhat) = 1.
  // w = 1 - 0.1 * (1 + 0.1 * 1) = 0.89;  b = 1 - 0.1 * 1 = 0.9.
  *gw = *gb = 0.5f;
  opt.step(0.1f);
  EXPECT_NEAR(*pw, 0.89, 1e-6);
  EXPECT_NEAR(*pb, 0.9, 1e-6);

  // Step 2, g = -0.25: m = 0.045 - 0.025 = 0.02, v = 0.00024975 + 0.0000625 = 0.00031225,
  // mhat = 0.02 / 0.19 = 0.1052632, vhat = 0.00031225 / 0.001999 = 0.1562031,
  // mhat / sqrt(vhat) = 0.2663373.  w = 0.89 - 0.1 * (0.2663373 + 0.089) = 0.8544663.
  *gw = *gb = -0.25f;
  opt.step(0.1f);
  EXPECT_NEAR(*pw, 0.8544663, 1e-6);
  EXPECT_NEAR(*pb, 0.9 - 0.1 * 0.2663373, 1e-6);
  EXPECT_EQ(opt.steps(), 2);
}

TEST(AdamW, AFrozenParameterKeepsItsValueAndMoments) {
  ParamRegistry reg;
  const int a = reg.add("a", {2}, Init::ones());
  const int b = reg.add("b", {2}, Init::ones());
  reg.allocate();
  reg.initialize(0);
  AdamW opt(reg, {});
  for (int64_t i = 0; i < reg.total_elements(); ++i) reg.grads()[i] = 0.5f;
  opt.freeze(b, true);
  opt.step(0.1f);
  EXPECT_LT(reg.value(a).f32()[0], 1.0f);
  EXPECT_EQ(reg.value(b).f32()[0], 1.0f);
  const int64_t at = reg.info(b).offset;
  EXPECT_EQ(opt.m().data()[at], 0.0f);
  EXPECT_EQ(opt.v().data()[at], 0.0f);
  opt.freeze(b, false);
  opt.step(0.1f);
  EXPECT_LT(reg.value(b).f32()[0], 1.0f);
}

TEST(Schedule, WarmupThenCosineToMinimum) {
  const ScheduleConfig s{.kind = "cosine", .lr = 1e-3, .min_lr = 1e-4, .warmup = 10, .total = 110};
  EXPECT_NEAR(learning_rate(s, 0), 1e-4, 1e-12);  // (0 + 1) / 10 of the peak
  EXPECT_NEAR(learning_rate(s, 9), 1e-3, 1e-12);
  EXPECT_NEAR(learning_rate(s, 10), 1e-3, 1e-12);    // cosine starts at the peak
  EXPECT_NEAR(learning_rate(s, 60), 5.5e-4, 1e-12);  // half way: the mean of peak and minimum
  EXPECT_NEAR(learning_rate(s, 110), 1e-4, 1e-12);
  EXPECT_NEAR(learning_rate(s, 500), 1e-4, 1e-12);
}

TEST(Schedule, InverseSquareRootAndConstant) {
  ScheduleConfig s{.kind = "inv_sqrt", .lr = 1e-3, .min_lr = 0, .warmup = 100, .total = 1000};
  EXPECT_NEAR(learning_rate(s, 99), 1e-3, 1e-12);
  EXPECT_NEAR(learning_rate(s, 399), 1e-3 * std::sqrt(100.0 / 400.0), 1e-12);
  s.kind = "constant";
  EXPECT_NEAR(learning_rate(s, 999), 1e-3, 1e-12);
}

TEST(Clip, TheFactorBringsTheGlobalNormToTheLimit) {
  ParamRegistry reg;
  reg.add("a", {1}, Init::zeros());
  reg.add("b", {1, 1}, Init::zeros());
  reg.allocate();
  reg.grads()[0] = 3.0f;
  reg.grads()[1] = 4.0f;
  const double norm = grad_norm(reg);
  EXPECT_NEAR(norm, 5.0, 1e-9);
  EXPECT_EQ(clip_scale(norm, 10.0), 1.0f);  // below the limit: unchanged
  EXPECT_EQ(clip_scale(norm, 0.0), 1.0f);   // 0: no clipping
  EXPECT_NEAR(clip_scale(norm, 1.0), 0.2, 1e-6);
}

// The clipping factor is applied as AdamW reads each gradient: the same bits as scaling the
// gradients first and stepping at factor 1.
TEST(AdamW, TheGradientFactorIsScalingTheGradientsFirst) {
  auto run = [](bool fused) {
    ParamRegistry reg;
    reg.add("w", {3, 5}, Init::normal(1.0f));
    reg.add("b", {5}, Init::normal(1.0f));
    reg.allocate();
    reg.initialize(3);
    AdamW opt(reg, {});
    for (int step = 0; step < 3; ++step) {
      for (int64_t i = 0; i < reg.total_elements(); ++i)
        reg.grads()[i] = 0.1f * float(i % 7) - 0.3f + 0.01f * step;
      const float s = clip_scale(grad_norm(reg), 0.5);
      if (!fused)
        for (int64_t i = 0; i < reg.total_elements(); ++i) reg.grads()[i] *= s;
      opt.step(0.01f, fused ? s : 1.0f);
    }
    return std::vector<float>(reg.values(), reg.values() + reg.total_elements());
  };
  EXPECT_EQ(run(true), run(false));
}

// EvoMoE's phases and temperature from the scheduler, against the formulas by hand: 20 steps,
// the spawn before step 4, tau annealed over 10 steps, then top-1 at tau_min.
TEST(Scheduler, EvoMoePhasesAndTemperatureFollowTheSchedule) {
  for (const char* kind : {"linear", "exp"}) {
    const Config c =
        parse_config({"--moe.experts", "4", "--moe.gate", "evomoe", "--train.steps", "20",
                      "--evo.diversify_step", "4", "--evo.anneal_steps", "10", "--evo.tau_max", "2",
                      "--evo.tau_min", "0.5", "--evo.schedule", kind});
    const Scheduler s(c);
    for (int64_t step = 0; step < 20; ++step) {
      const StepPlan p = s.plan(step);
      EXPECT_EQ(p.phase, step < 4 ? 0 : step < 14 ? 1 : 2) << step;
      EXPECT_EQ(p.diversify, step == 4) << step;
      if (p.phase == 0) continue;
      const double f = p.phase == 1 ? double(step - 4) / 10 : 1.0;
      const double tau = std::string(kind) == "linear" ? 2 - 1.5 * f : 2 * std::pow(0.25, f);
      EXPECT_NEAR(p.tau, tau, 1e-6) << kind << " step " << step;
    }
  }
}

}  // namespace
}  // namespace mt
