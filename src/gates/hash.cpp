// Hash tables and the hash gate.
#include "gates/hash.hpp"

#include <algorithm>
#include <numeric>

#include "tensor/error.hpp"
#include "tensor/rng.hpp"

namespace mt {

std::vector<int32_t> balanced_hash(const std::vector<int64_t>& counts, int num_experts) {
  std::vector<int32_t> ids(counts.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(),
                   [&](int32_t a, int32_t b) { return counts[a] > counts[b]; });
  std::vector<int64_t> load(num_experts, 0);
  std::vector<int32_t> table(counts.size());
  for (int32_t id : ids) {
    const auto e = int32_t(std::min_element(load.begin(), load.end()) - load.begin());
    table[id] = e;
    load[e] += counts[id];
  }
  return table;
}

std::vector<int32_t> random_hash(int64_t vocab, int num_experts, uint64_t seed) {
  const Rng rng(seed, stream_id({name_hash("hash-table")}));
  std::vector<int32_t> table(vocab);
  for (int64_t v = 0; v < vocab; ++v) table[v] = int32_t(rng.below(uint64_t(v), num_experts));
  return table;
}

HashGate::HashGate(std::vector<int32_t> table, int num_experts)
    : table_(std::move(table)), num_experts_(num_experts) {}

Routing HashGate::route(Arena& arena, const Tensor& x, const RouteContext& ctx) const {
  const int64_t T = x.size(0);
  MT_CHECK(ctx.token_ids, "hash gate: no token ids");
  Routing r = one_choice(arena, T, num_experts_, ctx);
  for (int64_t t = 0; t < T; ++t) {
    const int32_t id = ctx.token_ids[t];
    MT_CHECK(id >= 0 && id < int64_t(table_.size()), "hash gate: token id {} outside the table",
             id);
    r.expert.i32()[t] = table_[id];
  }
  count_load(r);
  return r;
}

}  // namespace mt
