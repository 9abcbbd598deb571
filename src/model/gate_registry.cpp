// The registry of gates: one line per method.
#include "model/gate_registry.hpp"

#include "gates/comet.hpp"
#include "gates/dselect_k.hpp"
#include "gates/evomoe.hpp"
#include "gates/hash.hpp"
#include "gates/permuted.hpp"
#include "gates/thor.hpp"
#include "gates/topk.hpp"
#include "model/moe.hpp"
#include "tensor/error.hpp"

namespace mt {

namespace {
std::unique_ptr<Gate> top_k(const GateArgs& a, int k) {
  const MoeConfig& c = a.moe;
  return std::make_unique<TopKGate>(
      a.reg, a.prefix, a.d,
      TopKConfig{k, c.num_experts, c.capacity_factor, c.eval_capacity_factor, c.dropless,
                 c.aux_weight, c.z_weight});
}
}  // namespace

const std::vector<GateEntry>& gate_registry() {
  static const std::vector<GateEntry> gates = {
      {"switch", {.local_routing = true}, {}, [](const GateArgs& a) { return top_k(a, 1); }},
      {"gshard",
       {.local_routing = true, .choices = 2, .min_experts = 2},
       {},
       [](const GateArgs& a) { return top_k(a, 2); }},
      {"hash",
       {.hash_table = true},
       {},
       [](const GateArgs& a) -> std::unique_ptr<Gate> {
         MT_CHECK(!a.hash_table.empty(), "moe.gate = hash needs a hash table");
         return std::make_unique<HashGate>(a.hash_table, a.moe.num_experts);
       }},
      {"thor",
       {.passes = 2},
       ThorGate::keys(),
       [](const GateArgs& a) -> std::unique_ptr<Gate> {
         return std::make_unique<ThorGate>(a.moe.num_experts, a.moe.keys);
       }},
      {"evomoe",
       {.phases = true},
       {},
       [](const GateArgs& a) -> std::unique_ptr<Gate> {
         const MoeConfig& c = a.moe;
         return std::make_unique<EvoGate>(
             a.reg, a.prefix, a.d,
             EvoGateConfig{c.num_experts, c.evo_threshold, c.aux_weight, c.evo_gumbel_weights});
       }},
      {"dselect_k",
       {.min_experts = 2},
       DSelectKGate::keys(),
       [](const GateArgs& a) -> std::unique_ptr<Gate> {
         return std::make_unique<DSelectKGate>(a.reg, a.prefix, a.d,
                                               DSelectKGate::config(a.moe.num_experts, a.moe.keys));
       }},
      {"comet",
       {.min_experts = 2},
       CometGate::keys(),
       [](const GateArgs& a) -> std::unique_ptr<Gate> {
         return std::make_unique<CometGate>(a.reg, a.prefix, a.d,
                                            CometGate::config(a.moe.num_experts, a.moe.keys));
       }},
  };
  return gates;
}

std::unique_ptr<Gate> make_gate(const GateArgs& a) {
  std::unique_ptr<Gate> g = find_gate(a.moe.gate).make(a);
  if (!permuted(a.moe)) return g;
  return std::make_unique<PermutedGate>(std::move(g), a.reg, a.prefix, a.moe.num_experts,
                                        a.moe.keys);
}

std::vector<GateKey> gate_keys() {
  std::vector<GateKey> keys = PermutedGate::keys();
  for (const GateEntry& g : gate_registry()) keys.insert(keys.end(), g.keys.begin(), g.keys.end());
  return keys;
}

bool permuted(const MoeConfig& moe) {
  return moe.num_experts > 0 && PermutedGate::enabled(moe.keys);
}

std::string gate_names() {
  std::string s;
  const auto& g = gate_registry();
  for (size_t i = 0; i < g.size(); ++i)
    s += (i == 0 ? "" : i + 1 == g.size() ? " or " : ", ") + g[i].name;
  return s;
}

GateTraits gate_traits(const MoeConfig& moe) {
  return moe.num_experts > 0 ? find_gate(moe.gate).traits : GateTraits{};
}

namespace {
const GateEntry* lookup(const std::string& name) {
  for (const GateEntry& g : gate_registry())
    if (g.name == name) return &g;
  return nullptr;
}
}  // namespace

bool is_gate(const std::string& name) {
  return lookup(name) != nullptr;
}

const GateEntry& find_gate(const std::string& name) {
  const GateEntry* g = lookup(name);
  MT_CHECK(g, "moe.gate = '{}' ({})", name, gate_names());
  return *g;
}

}  // namespace mt
