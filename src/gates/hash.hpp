// Hash routing (Roller et al. 2021): a token goes to a fixed expert chosen by its id; no router
// parameters, no auxiliary loss, no capacity, weight 1 (docs/methods.md §5.3).
#pragma once
#include <cstdint>
#include <vector>

#include "gates/gate.hpp"

namespace mt {

// Balanced: vocabulary ids in descending frequency order, each to the least-loaded expert so far
// (ties: lowest expert id), so expected loads are equal. counts: unigram counts of the training
// split.
std::vector<int32_t> balanced_hash(const std::vector<int64_t>& counts, int num_experts);
// Random: an independent uniform expert per vocabulary id, from the seed.
std::vector<int32_t> random_hash(int64_t vocab, int num_experts, uint64_t seed);

class HashGate : public Gate {
 public:
  HashGate(std::vector<int32_t> table, int num_experts);
  Routing route(Arena& arena, const Tensor& x, const RouteContext& ctx) const override;
  void backward(Arena&, const Routing&, const Tensor&, const Tensor&) const override {}
  const std::vector<int32_t>& table() const { return table_; }

 private:
  std::vector<int32_t> table_;
  int num_experts_;
};

}  // namespace mt
