// Local experts: forward and backward side by side, one FFN per expert on its rows.
#include "model/experts.hpp"

#include "tensor/error.hpp"

namespace mt {

Experts::Experts(ParamRegistry& reg, const std::string& prefix, int num_experts, int first,
                 int local, int64_t d, int64_t f, float proj_std)
    : reg_(reg),
      first_(first),
      local_(local),
      w1_(reg.add_expert(prefix + "/fc1/w", {local, d, f}, Init::normal(0.02f), num_experts,
                         first)),
      b1_(reg.add_expert(prefix + "/fc1/b", {local, f}, Init::zeros(), num_experts, first)),
      w2_(reg.add_expert(prefix + "/fc2/w", {local, f, d}, Init::normal(proj_std), num_experts,
                         first)),
      b2_(reg.add_expert(prefix + "/fc2/b", {local, d}, Init::zeros(), num_experts, first)) {}

FfnWeights Experts::slice(int e, bool grad) const {
  auto get = [&](int i) { return (grad ? reg_.grad(i) : reg_.value(i))[e]; };
  return {get(w1_), get(b1_), get(w2_), get(b2_)};
}

Tensor Experts::forward(Arena& arena, const Tensor& x, const std::vector<int64_t>& offsets,
                        Cache& cache) const {
  MT_CHECK(int(offsets.size()) == local_ + 1 && offsets.back() == x.size(0),
           "experts: offsets do not cover the {} rows", x.size(0));
  cache.offsets = offsets;
  cache.per_expert.resize(local_);
  Tensor y = arena.alloc(x.shape);
  for (int e = 0; e < local_; ++e) {
    if (offsets[e] == offsets[e + 1]) continue;  // no tokens: nothing to compute
    ffn_forward(arena, x.rows(offsets[e], offsets[e + 1]), slice(e, false), cache.per_expert[e],
                y.rows(offsets[e], offsets[e + 1]));
  }
  return y;
}

Tensor Experts::backward(Arena& arena, const Tensor& dy, const Cache& cache) const {
  Tensor dx = arena.alloc(dy.shape);
  const auto& o = cache.offsets;
  for (int e = 0; e < local_; ++e) {
    if (o[e] == o[e + 1]) continue;
    ffn_backward(arena, dy.rows(o[e], o[e + 1]), slice(e, false), slice(e, true),
                 cache.per_expert[e], dx.rows(o[e], o[e + 1]));
  }
  return dx;
}

}  // namespace mt
