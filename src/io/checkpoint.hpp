// Checkpoint files in the public layout of DESIGN.md: /model/<parameter name>,
// /optim/<parameter name>/{m,v}, root attributes format, version, step, config, code_version.
// Written under a temporary name, flushed, synced and renamed.
#pragma once
#include <string>

#include "optim/adamw.hpp"
#include "tensor/params.hpp"

namespace mt {

inline constexpr int64_t kCheckpointVersion = 1;

void save_checkpoint(const std::string& path, const ParamRegistry& reg, AdamW& opt, int64_t step,
                     const std::string& config_ini);
// Loads /model/* into the registry; every parameter must be present with its shape.
void load_model(const std::string& path, ParamRegistry& reg);
// The config text stored in a checkpoint (to rebuild the model it was saved from).
std::string checkpoint_config(const std::string& path);

}  // namespace mt
