// The gates moetrain knows, by name: the one list the MoE layer builds its gate from, the config
// checks `moe.gate` against, and the W-rank equivalence test must cover. What the trainer, the
// scheduler and the config checks need to know of a gate are its traits here, never its name.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "gates/gate.hpp"
#include "gates/gate_keys.hpp"
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

struct GateTraits {
  bool local_routing = false;  // has Gate::route_local, so Gating Dropout works with it
  int choices = 1;             // experts per token (the exchange's send buffer per token)
  int min_experts = 1;
  bool hash_table = false;  // routes by a token -> expert table made before the model
  int passes = 1;           // forward passes per step; 2: THOR's consistency-regularised pair
  bool phases = false;      // the scheduler runs EvoMoE's phases (StepPlan::phase, tau)
};

struct GateEntry {
  std::string name;
  GateTraits traits;
  std::vector<GateKey> keys;  // the gate's own configuration keys (read from GateArgs::moe.keys)
  std::unique_ptr<Gate> (*make)(const GateArgs&);
};

const std::vector<GateEntry>& gate_registry();
// The gate of `a.moe.gate`, inside COMET+'s permutation search when perm.steps > 0.
std::unique_ptr<Gate> make_gate(const GateArgs& a);
// Every key of every gate, and the permutation search's (the options the config parser adds).
std::vector<GateKey> gate_keys();
bool permuted(const MoeConfig& moe);
bool is_gate(const std::string& name);
// The entry of `name`, or an error listing the registered names.
const GateEntry& find_gate(const std::string& name);
// "switch, gshard, ... or evomoe", for messages and help text.
std::string gate_names();
// The traits of the model's gate; a dense model (moe.experts = 0) has the defaults.
GateTraits gate_traits(const MoeConfig& moe);

}  // namespace mt
