// The gates moetrain knows, by name: the one list the MoE layer builds its gate from, the config
// checks `moe.gate` against, and the W-rank equivalence test must cover.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "gates/gate.hpp"
#include "tensor/params.hpp"

namespace mt {

struct MoeConfig;

// What a gate's constructor may use: its parameter prefix, the model width, the layer's MoE
// configuration and the hash table (hash routing only).
struct GateArgs {
  ParamRegistry& reg;
  std::string prefix;
  int64_t d;
  const MoeConfig& moe;
  const std::vector<int32_t>& hash_table;
};

struct GateEntry {
  std::string name;
  bool local_routing;  // has Gate::route_local, so Gating Dropout works with it
  std::unique_ptr<Gate> (*make)(const GateArgs&);
};

const std::vector<GateEntry>& gate_registry();
bool is_gate(const std::string& name);
// The entry of `name`, or an error listing the registered names.
const GateEntry& find_gate(const std::string& name);
// "switch, gshard, ... or evomoe", for messages and help text.
std::string gate_names();

}  // namespace mt
