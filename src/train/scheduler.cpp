// Scheduler: turns the config into one StepPlan per step.
#include "train/scheduler.hpp"

#include "tensor/rng.hpp"

namespace mt {

StepPlan Scheduler::plan(int64_t step) const {
  StepPlan p;
  p.step = step;
  ScheduleConfig s = cfg_.schedule;
  s.total = cfg_.steps;
  p.lr = learning_rate(s, step);
  const int64_t done = step + 1;
  p.last = done == cfg_.steps;
  p.log = done % cfg_.log_every == 0 || p.last || step == 0;
  p.eval = p.last || (cfg_.eval_every > 0 && done % cfg_.eval_every == 0);
  const Rng rng(cfg_.seed, stream_id({name_hash("plan"), uint64_t(step)}));
  p.key = (uint64_t(rng.bits(0)) << 32) | rng.bits(1);
  p.gate_drop = cfg_.model.moe.num_experts > 0 && rng.uniform(2) < cfg_.model.moe.gd_p;
  return p;
}

}  // namespace mt
