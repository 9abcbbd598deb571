// The learned routers' linear map h = x W: computed where x lives (CPU or GPU), read on the host,
// where the routing decisions are made; and its backward from a host gradient dh.
#include "gates/gate.hpp"
#include "tensor/ops.hpp"

namespace mt {

Tensor router_logits(Arena& arena, const Tensor& x, const Tensor& w) {
  Tensor h = arena.alloc({x.size(0), w.size(1)});
  ops::matmul(x, false, w, false, h);
  return arena.to_host(h);
}

void router_backward(Arena& arena, const Tensor& x, const Tensor& dh, const Tensor& w,
                     const Tensor& dw, const Tensor& dx) {
  const Tensor g = arena.to_device(dh);
  ops::matmul(x, true, g, false, dw, 1.0f, 1.0f);
  ops::matmul(g, false, w, true, dx, 1.0f, 1.0f);
}

}  // namespace mt
