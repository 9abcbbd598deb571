// Gate interface: maps token vectors x [T, d] to (expert, weight) pairs. The Routing it returns
// is also what its backward needs, so two forward passes keep two independent routings.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "tensor/arena.hpp"

namespace mt {

// What a gate needs to know besides x, identical on every rank.
struct RouteContext {
  uint64_t seed = 0;
  int64_t step = 0;
  int layer = 0;
  bool training = true;
  const int32_t* token_ids = nullptr;  // [T], for hash routing
  int64_t group_tokens = 0;            // tokens per capacity group (divides T)
  int64_t global_groups = 1;           // capacity groups in the global batch (aux normaliser)
  int64_t global_tokens = 1;           // tokens in the global batch (z-loss normaliser)
  int64_t first_token = 0;             // index of this rank's first token in the global batch
  int64_t seq_len = 1;                 // tokens per sequence
  uint64_t key = 0;                    // the step's routing key (StepPlan::key)
  int micro = 0;                       // micro-batch within the step (THOR draws per micro-batch)
  int pass = 0;                        // forward pass within the step (THOR runs two)
  int phase = 0;                       // EvoMoE: 0 one expert, 1 dense-to-sparse, 2 top-1
  float tau = 1.0f;                    // EvoMoE dense-to-sparse temperature
  const uint8_t* alive = nullptr;      // [T]: 0 where the token has left at an early exit
                                       // (evaluation only); null: every token routes
};

// Everything but x lives on the host: routing is decided there, whatever the device.
struct Routing {
  int k = 1;
  RouteContext ctx;
  Tensor expert;  // [T, k] i32 global expert id; -1: dropped (capacity or second-expert sampling)
  Tensor weight;  // [T, k] f32 combine weight
  // Cached for the backward pass of learned gates: the input, softmax, log-sum-exp per token,
  // the choices before dropping [T, k], and each group's first-choice fractions [groups, E].
  Tensor x, probs, lse, choice, frac;
  Tensor saved;               // whatever else one gate's backward needs (DSelect-k: z)
  double aux = 0, z = 0;      // this rank's share of the weighted losses
  bool constant = false;      // the weights are constants: the gate gets no gradient
  std::vector<int64_t> load;  // tokens whose first choice is each expert (before capacity)
  int64_t dropped = 0;        // (token, choice) pairs dropped by capacity
  std::shared_ptr<const Routing> inner;  // a gate around another: the inner gate's routing
};

class Gate {
 public:
  virtual ~Gate() = default;
  virtual Routing route(Arena& arena, const Tensor& x, const RouteContext& ctx) const = 0;
  // Gating Dropout: every token to the expert of [first, first + count) with the highest gate
  // probability, no capacity and no losses (docs/methods.md §2.1, our choice). The weight is that
  // expert's gate probability (gate_weight) or 1; either way a constant: the gate gets no gradient.
  virtual Routing route_local(Arena& arena, const Tensor& x, const RouteContext& ctx, int first,
                              int count, bool gate_weight) const;
  // dweight [T, k]: the loss gradient of each combine weight, 0 where the pair reached no expert
  // (expert -1: dropped, or a weight of 0; the MoE layer writes only the pairs that ran).
  // Accumulates into dx [T, d] and the gate's parameter gradients, adding the aux and z losses'
  // gradients.
  virtual void backward(Arena& arena, const Routing& r, const Tensor& dweight,
                        const Tensor& dx) const = 0;
};

// Learned routers: the logits h = x W [T, E] as a host tensor (computed on x's device; on the
// CPU no copy is made), and the backward: dW += x^T dh, dx += dh W^T for a host dh.
Tensor router_logits(Arena& arena, const Tensor& x, const Tensor& w);
void router_backward(Arena& arena, const Tensor& x, const Tensor& dh, const Tensor& w,
                     const Tensor& dw, const Tensor& dx);

// The learned routers' softmax on the host: row [n] in place, returning its log-sum-exp; and its
// backward for every row of p [T, E]: dp = scale * p * (dp - <p, dp>), in place.
float softmax_row(float* row, int64_t n);
void softmax_rows_backward(const Tensor& p, const Tensor& dp, float scale);

// The learned routers' load-balancing loss (Switch's and EvoMoE's): per group of G tokens,
// weight * E * sum_e f_e * m_e / G, averaged over the global batch's groups. frac [groups, E] is
// each group's fraction of tokens routed to e (a constant); mass [groups * E] sums over the
// group's tokens what the gate differentiates (Switch: the router probabilities; EvoMoE: the
// active experts' weights). d loss / d(token t's value for e) = balance_scale * f[group of t, e].
double balance_loss(const Tensor& frac, const std::vector<double>& mass, double weight,
                    int64_t group_tokens, int64_t global_groups);
float balance_scale(double weight, int64_t num_experts, int64_t group_tokens,
                    int64_t global_groups);

// A routing of one choice per token, weight 1, nothing dropped, no losses: fill expert [T, 1],
// then count the load with count_load().
Routing one_choice(Arena& arena, int64_t tokens, int num_experts, const RouteContext& ctx);
void count_load(Routing& r);

// A routing of weights over every expert (k = E, column e is expert e): fill weight [T, E], then
// mark_nonzero() sets expert [T, E] (e where the weight is > 0, else -1) and counts the load.
Routing every_expert(Arena& arena, int64_t tokens, int num_experts, const RouteContext& ctx);
void mark_nonzero(Routing& r);

// Capacity per expert and group: ceil(cf * k * group_tokens / E); dropless: no limit.
int64_t expert_capacity(double cf, int k, int64_t group_tokens, int num_experts, bool dropless);

// Claims slots in token order within each group of group_tokens tokens, all first choices
// before all second choices; a choice beyond the capacity becomes -1. Returns the dropped count.
// A token that is not alive (RouteContext::alive) claims none: its choices become -1, uncounted.
int64_t apply_capacity(const Tensor& expert, int num_experts, int64_t group_tokens,
                       int64_t capacity, const uint8_t* alive = nullptr);

}  // namespace mt
