// Scheduler: turns the config into one StepPlan per step.
#include "train/scheduler.hpp"

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
  return p;
}

}  // namespace mt
