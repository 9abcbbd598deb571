// Gradient synchronisation: one all-reduce per parameter kind (each kind is contiguous).
#include "optim/grad_sync.hpp"

namespace mt {

void sync_gradients(ParamRegistry& reg, ProcessGroup& world, ProcessGroup& expert_dp) {
  const auto [rb, re] = reg.range(ParamKind::Replicated);
  world.all_reduce_sum(reg.grads() + rb, re - rb);  // every rank calls it, even with 0 elements
  const auto [eb, ee] = reg.range(ParamKind::Expert);
  expert_dp.all_reduce_sum(reg.grads() + eb, ee - eb);
}

}  // namespace mt
