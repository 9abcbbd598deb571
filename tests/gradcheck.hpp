// Central finite differences against analytic gradients, for the layer and model tests.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "tensor/rng.hpp"
#include "tensor/tensor.hpp"

namespace mt::test {

// Checks grad[i] ~ (loss(x + h e_i) - loss(x - h e_i)) / 2h at `samples` indices spread over
// [0, n) (all of them if n <= samples). Tolerance: |a - n| <= rtol * max(|a|, |n|) + atol.
inline void check_gradient(const std::string& what, float* x, const float* grad, int64_t n,
                           const std::function<double()>& loss, int samples = 24, double h = 1e-2,
                           double rtol = 2e-2, double atol = 2e-4) {
  const Rng pick(99, name_hash(what.c_str()));
  const int64_t count = n <= samples ? n : samples;
  for (int64_t s = 0; s < count; ++s) {
    const int64_t i = n <= samples ? s : int64_t(pick.below(s, n));
    const float saved = x[i];
    x[i] = saved + float(h);
    const double up = loss();
    x[i] = saved - float(h);
    const double down = loss();
    x[i] = saved;
    const double numeric = (up - down) / (2 * h);
    EXPECT_NEAR(grad[i], numeric,
                rtol * std::max(std::abs(numeric), std::abs(double(grad[i]))) + atol)
        << what << " index " << i;
  }
}

// L = sum(y * r) in double: a random projection that makes any output a scalar loss.
inline double project(const Tensor& y, const std::vector<float>& r) {
  double s = 0;
  for (int64_t i = 0; i < y.numel(); ++i) s += double(y.f32()[i]) * r[i];
  return s;
}

// Fills a buffer with standard normal numbers from a named stream.
inline void randn(float* p, int64_t n, const char* stream, float scale = 1.0f) {
  const Rng r(1234, name_hash(stream));
  for (int64_t i = 0; i < n; ++i) p[i] = scale * r.normal(i);
}

}  // namespace mt::test
