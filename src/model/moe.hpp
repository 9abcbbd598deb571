// Mixture-of-Experts layer (docs/design.md, "One step, as data"): gate -> bucket (token, choice)
// pairs by expert -> exchange counts, then tokens, over the EP group -> local experts -> exchange
// back -> weighted combine. The backward runs the same exchanges in reverse and gives the gate its
// gradient. Expert e lives on EP rank e / E_local.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "comm/all_to_all.hpp"
#include "gates/gate.hpp"
#include "gates/gate_keys.hpp"
#include "model/experts.hpp"

namespace mt {

struct MoeConfig {
  int num_experts = 0;          // 0: a dense model
  int every = 2;                // block i is MoE when i % every == every - 1
  std::string gate = "switch";  // a name in the gate registry (model/gate_registry.cpp)
  double capacity_factor = 1.25, eval_capacity_factor = 2.0;
  bool dropless = false;
  double aux_weight = 0.01, z_weight = 0.001;
  int64_t group_sequences = 1;        // sequences per capacity (and aux-loss) group
  int64_t d_ff = 0;                   // expert hidden width (0: the model's d_ff)
  std::string hash = "balanced";      // balanced | random
  double gd_p = 0;                    // Gating Dropout rate (0: off)
  std::string gd_mode = "gate_drop";  // gate_drop | gate_expert_drop
  std::string gd_weight = "gate";     // gate (the local expert's probability, constant) | one
  std::string gd_coin = "step";       // step (one coin for every MoE layer) | layer
  double thor_alpha = 1.0;            // THOR consistency weight
  int64_t evo_diversify_step = 0;     // EvoMoE: step of the spawn (0: 15% of train.steps)
  int64_t evo_anneal_steps = 0;       // temperature annealing steps (0: 50% of train.steps)
  double evo_mask_ratio = 0.5, evo_threshold = 0.001, evo_tau_max = 2.0, evo_tau_min = 0.5;
  std::string evo_schedule = "linear";  // temperature annealing: linear | exp
  bool evo_gumbel_weights = false;      // combine weight: g (true) or the clean softmax(h)
  GateKeys keys;                        // the gates' own keys (their registry entries list them)
};

// What one forward pass needs besides its input, identical on every rank but for
// first_sequence: built once per pass by its caller (training, evaluation, benchmarks). The model
// fills in what route derives from the batch (token ids, groups, first token, layer).
struct PassContext {
  AllToAll* a2a = nullptr;       // the EP group's token exchange (MoE models)
  int64_t global_sequences = 0;  // sequences in the global batch (0: this rank's batch)
  int64_t first_sequence = 0;    // this rank's first sequence in the global batch
  uint64_t gate_drop = 0;        // Gating Dropout: bit i set when block i routes locally
  RouteContext route = {};       // seed, step, training, routing key, micro-batch, pass, phase
  bool drops(int layer) const { return route.training && ((gate_drop >> layer) & 1); }
};

class MoeLayer {
 public:
  MoeLayer(ParamRegistry& reg, const std::string& prefix, int64_t d, int64_t f, const MoeConfig& c,
           int ep_rank, int ep_size, float proj_std, const std::vector<int32_t>& hash_table);
  struct Cache {
    Routing routing;
    bool on_rank = false;       // Gating Dropout step: every row stayed on this rank, no exchange
    bool skipped = false;       // Gate-Expert-Drop step: the layer was the identity (y = 0)
    std::vector<int32_t> slot;  // pair t * k + j -> assignment index, or -1 (dropped)
    Tensor slots, weights;      // slot and the combine weights [T, k] on the rows' device
    std::vector<int> send_rows, recv_rows;  // [peer][local expert] rows
    A2aPlan plan;  // the exchanges' counts (floats per peer); unused on a Gating Dropout step
    // Row offsets of block (peer, local expert) in peer-major and in expert-major order, of
    // each local expert's rows, and of each expert's pairs while bucketing. Reused every step.
    std::vector<int64_t> peer_major, expert_major, expert_rows, bucket;
    Tensor back;  // [assignments, d]: expert outputs returned to this rank, assignment order
    Experts::Cache experts;
  };
  // x [T, d] -> y [T, d]
  Tensor forward(Arena& arena, const Tensor& x, const PassContext& pass, Cache& cache) const;
  Tensor backward(Arena& arena, const Tensor& dy, const PassContext& pass,
                  const Cache& cache) const;
  int num_experts() const { return cfg_.num_experts; }

 private:
  // The token exchange out to the experts' ranks or back, or a local copy on a Gating Dropout
  // step (no communication at all).
  static void exchange(const PassContext& pass, const Cache& c, const Tensor& from,
                       const Tensor& to, bool back);
  // Rows from [peer][local expert] order to [local expert][peer] order, or back.
  static void permute(const Tensor& in, const Tensor& out, const Cache& c, bool to_expert_major);
  MoeConfig cfg_;
  int ep_size_, local_;
  std::unique_ptr<Gate> gate_;
  Experts experts_;
};

}  // namespace mt
