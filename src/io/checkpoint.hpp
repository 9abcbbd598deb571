// Checkpoint files in the public layout of docs/design.md: /model/<parameter name>,
// /optim/<parameter name>/{m,v}, /tokenizer (the SentencePiece model's bytes), root attributes
// format, version, step, config, world_size, ep_size, code_version. Expert tensors are stored whole
// ([E, ...], gathered to rank 0), so any expert-parallel size that divides E can load the file.
// Written by rank 0 under a temporary name, flushed, synced and renamed.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "comm/topology.hpp"
#include "optim/adamw.hpp"
#include "tensor/params.hpp"

namespace mt {

inline constexpr int64_t kCheckpointVersion = 1;

// A registry and its optimizer in a checkpoint: /model/<name>, /optim/<name>/{m,v}, and the
// optimizer's step count in /optim's attribute step_key. One file may hold several with names
// apart (moetrain exits: its heads and its gates, each with its own AdamW).
struct CheckpointPart {
  const ParamRegistry& reg;
  const AdamW& opt;
  std::string step_key = "step";
};

// Collective over the world: every rank calls it; rank 0 writes. A failure on rank 0 is
// reported on every rank.
// scheduler: the attributes of /scheduler (the last plan's phase, phase_step, lr, ...).
// tokenizer: the SentencePiece model's bytes, stored as /tokenizer (uint8; none when empty).
void save_checkpoint(const std::string& path, const std::vector<CheckpointPart>& parts,
                     int64_t step, const std::string& config_ini, const Groups& groups,
                     const std::map<std::string, double>& scheduler,
                     const std::string& tokenizer = "");
inline void save_checkpoint(const std::string& path, const ParamRegistry& reg, const AdamW& opt,
                            int64_t step, const std::string& config_ini, const Groups& groups,
                            const std::map<std::string, double>& scheduler,
                            const std::string& tokenizer = "") {
  save_checkpoint(path, {{reg, opt}}, step, config_ini, groups, scheduler, tokenizer);
}
// Loads /model/* into the registry (this rank's rows of expert tensors); every parameter must be
// present with its shape.
void load_model(const std::string& path, ParamRegistry& reg);
// Loads the Adam moments (this rank's rows) and returns the optimizer's step count.
int64_t load_optimizer(const std::string& path, const ParamRegistry& reg, AdamW& opt,
                       const std::string& step_key = "step");
// The attribute `key` of /scheduler, which must be there.
double checkpoint_value(const std::string& path, const std::string& key);
// What is wrong with a checkpoint (empty: nothing): unreadable, another format, a dataset whose
// checksum does not match, or a tensor holding NaN or Inf, naming the file and the dataset.
// Reads the whole file.
std::string checkpoint_problem(const std::string& path);
// The newest intact checkpoint of a run folder (<run>/checkpoint.h5 and <run>/checkpoints/*.h5,
// by their step attribute): newer ones with a problem are passed over, their problems appended
// to `skipped`. Throws if there is none.
std::string latest_checkpoint(const std::string& run_dir, std::vector<std::string>& skipped);
// Deletes all but the newest `keep` files of <run>/checkpoints/, and the .tmp files of writers
// killed before their rename (rank 0 calls it after its own rename, under the run folder's lock).
void prune_checkpoints(const std::string& run_dir, int64_t keep);

// The config text stored in a checkpoint (to rebuild the model it was saved from).
std::string checkpoint_config(const std::string& path);
// The tokenizer model stored in a checkpoint ("" when it holds none: written before they did).
std::string checkpoint_tokenizer(const std::string& path);
// The number of steps trained before the checkpoint was written.
int64_t checkpoint_step(const std::string& path);

}  // namespace mt
