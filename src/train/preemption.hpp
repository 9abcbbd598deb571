// Preemption: SIGUSR1 or SIGTERM (e.g. sbatch --signal=USR1@<seconds>) asks the run to stop. Rank
// 0's scheduler turns the request into the plan's checkpoint-and-stop flags, so every rank finishes
// the step and the checkpoint is written before the process exits 0.
#pragma once

namespace mt {

void install_preemption_handlers();
bool preemption_requested();

}  // namespace mt
