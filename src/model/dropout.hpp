// Dropout at GPT-2's places (model.dropout): the embeddings, the attention probabilities, the
// attention output and the FFN/MoE output. Inverted dropout: a kept element is scaled by
// 1 / (1 - p) in training; evaluation is the identity. Masks are Philox draws keyed by
// (seed, step, pass, layer, purpose) and the element's global position in the step's batch, so a
// run stays a pure function of config, seed and layout: W ranks, and N micro-batches, draw the
// masks one rank draws for the whole batch (the global position already tells micro-batches
// apart), and THOR's two passes draw independent masks.
#pragma once
#include <cstdint>

#include "gates/gate.hpp"
#include "tensor/arena.hpp"

namespace mt {

// Where a mask is drawn: the pass (a RouteContext: seed, step, pass, training), the layer and
// the purpose.
struct DropoutSite {
  float p = 0;
  const RouteContext* pass = nullptr;
  int layer = 0;
  const char* purpose = "";
  bool active() const { return p > 0 && pass && pass->training; }
};

// The mask of scale factors (0 or 1 / (1 - p)) for a tensor of `shape` on the arena's device
// whose element i is element first + i of the purpose's global tensor; empty when !site.active().
Tensor dropout_mask(Arena& arena, const DropoutSite& site, const Shape& shape, int64_t first);

// x * mask in a new arena tensor, or x itself when mask is empty; the backward is the same
// product on the gradient.
Tensor apply_mask(Arena& arena, const Tensor& x, const Tensor& mask);

}  // namespace mt
