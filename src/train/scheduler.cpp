// Scheduler: turns the config into one StepPlan per step.
#include "train/scheduler.hpp"

#include <algorithm>
#include <cmath>

#include "model/gate_registry.hpp"
#include "tensor/rng.hpp"

namespace mt {

const char* phase_name(int phase) {
  static const char* names[] = {"expert-diversify", "gate-sparsify", "top-1"};
  return names[phase];
}

int64_t Scheduler::diversify_step() const {
  const int64_t s = cfg_.model.moe.evo_diversify_step;
  return s > 0 ? s : std::max<int64_t>(1, std::llround(0.15 * cfg_.steps));
}

int64_t Scheduler::anneal_steps() const {
  const int64_t s = cfg_.model.moe.evo_anneal_steps;
  return s > 0 ? s : std::max<int64_t>(1, std::llround(0.5 * cfg_.steps));
}

StepPlan Scheduler::plan(int64_t step, bool preempt) const {
  StepPlan p;
  p.step = step;
  ScheduleConfig s = cfg_.schedule;
  s.total = cfg_.steps;
  p.lr = learning_rate(s, step);
  const int64_t done = step + 1;
  p.last = done == cfg_.steps;
  p.log = done % cfg_.log_every == 0 || p.last || step == 0;
  p.eval = p.last || (cfg_.eval_every > 0 && done % cfg_.eval_every == 0);
  p.stop = !p.last && ((cfg_.run_steps > 0 && done - first_ == cfg_.run_steps) || preempt);
  p.checkpoint =
      !p.last && (p.stop || (cfg_.checkpoint_every > 0 && done % cfg_.checkpoint_every == 0));
  const Rng rng(cfg_.seed, stream_id({name_hash("plan"), uint64_t(step)}));
  p.key = (uint64_t(rng.bits(0)) << 32) | rng.bits(1);
  const MoeConfig& m = cfg_.model.moe;
  // Gating Dropout's coins: one for every MoE layer (gd.coin = step), or one per MoE layer.
  if (m.num_experts > 0 && m.gd_p > 0)
    for (int i = 0; i < cfg_.model.n_layer; ++i)
      if (cfg_.model.is_moe_block(i) &&
          rng.uniform(m.gd_coin == "step" ? 2 : uint64_t(16 + i)) < m.gd_p)
        p.gate_drop |= uint64_t(1) << i;
  p.phase_step = step;
  if (gate_traits(m).phases) {
    const int64_t d = diversify_step(), a = anneal_steps();
    p.phase = step < d ? 0 : step < d + a ? 1 : 2;
    p.diversify = step == d;
    p.phase_step = p.phase == 0 ? step : p.phase == 1 ? step - d : step - d - a;
    // Annealing from tau_max to tau_min over the gate-sparsify phase, then tau_min.
    const double f = p.phase == 1 ? double(p.phase_step) / double(a) : 1.0;
    if (p.phase > 0)
      p.tau = float(m.evo_schedule == "linear"
                        ? m.evo_tau_max + (m.evo_tau_min - m.evo_tau_max) * f
                        : m.evo_tau_max * std::pow(m.evo_tau_min / m.evo_tau_max, f));
  }
  return p;
}

}  // namespace mt
