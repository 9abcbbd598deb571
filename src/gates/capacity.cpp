// Shared by the gates: single-choice routings, expert capacity and slot claiming, and the
// default of Gate::route_local.
#include <cmath>
#include <limits>
#include <vector>

#include "gates/gate.hpp"
#include "tensor/error.hpp"

namespace mt {

Routing Gate::route_local(Arena&, const Tensor&, const RouteContext&, int, int, bool) const {
  fail("this gate has no local routing (Gating Dropout needs moe.gate = switch or gshard)");
}

Routing one_choice(Arena& arena, int64_t tokens, int num_experts, const RouteContext& ctx) {
  Routing r;
  r.ctx = ctx;
  r.expert = arena.host().alloc({tokens, 1}, DType::I32);
  r.weight = arena.host().alloc({tokens, 1});
  float* w = r.weight.f32();
  for (int64_t t = 0; t < tokens; ++t) w[t] = 1.0f;
  r.load.assign(num_experts, 0);
  return r;
}

void count_load(Routing& r) {
  const int32_t* e = r.expert.i32();
  for (int64_t t = 0; t < r.expert.size(0); ++t) ++r.load[e[t]];
}

Routing every_expert(Arena& arena, int64_t tokens, int num_experts, const RouteContext& ctx) {
  Routing r;
  r.ctx = ctx;
  r.k = num_experts;
  r.expert = arena.host().alloc({tokens, num_experts}, DType::I32);
  r.weight = arena.host().alloc({tokens, num_experts});
  r.load.assign(num_experts, 0);
  return r;
}

void mark_nonzero(Routing& r) {
  for (int64_t i = 0; i < r.weight.numel(); ++i) {
    const int32_t e = int32_t(i % r.k);
    const bool on = r.weight.f32()[i] > 0;
    r.expert.i32()[i] = on ? e : -1;
    r.load[e] += on;
  }
}

int64_t expert_capacity(double cf, int k, int64_t group_tokens, int num_experts, bool dropless) {
  if (dropless) return std::numeric_limits<int64_t>::max();
  return int64_t(std::ceil(cf * k * double(group_tokens) / num_experts));
}

int64_t apply_capacity(const Tensor& expert, int num_experts, int64_t group_tokens,
                       int64_t capacity, const uint8_t* alive) {
  const int64_t T = expert.size(0), k = expert.size(1);
  MT_CHECK(group_tokens > 0 && T % group_tokens == 0,
           "capacity group of {} tokens does not divide {}", group_tokens, T);
  int32_t* e = expert.i32();
  std::vector<int64_t> used(num_experts);
  int64_t dropped = 0;
  for (int64_t g0 = 0; g0 < T; g0 += group_tokens) {
    std::fill(used.begin(), used.end(), 0);
    for (int64_t j = 0; j < k; ++j)
      for (int64_t t = g0; t < g0 + group_tokens; ++t) {
        int32_t& x = e[t * k + j];
        if (alive && !alive[t]) x = -1;
        if (x < 0) continue;
        if (used[x] < capacity) {
          ++used[x];
        } else {
          x = -1;
          ++dropped;
        }
      }
  }
  return dropped;
}

}  // namespace mt
