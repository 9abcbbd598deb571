// Run configuration: an INI file read with Boost.ProgramOptions, every key also a --flag
// (--section.key value). Unknown keys, bad values and missing files stop with one message.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/gpt.hpp"
#include "optim/adamw.hpp"
#include "optim/schedule.hpp"

namespace mt {

struct Config {
  // [run]
  std::string name = "default";
  uint64_t seed = 1;
  std::string results_dir = "results";
  bool overwrite = false;  // a fresh run replaces an earlier run's outputs (false: it refuses)
  // [data]
  std::string data_dir = "data/sword";
  // [model] and [moe]  (vocab comes from the prepared data)
  GptConfig model;
  // [train]
  int64_t batch_size = 16;
  int64_t micro_batch_size = 0;  // sequences per rank per forward/backward (0: batch_size / ranks)
  int64_t steps = 1000;
  ScheduleConfig schedule;
  AdamWConfig adamw;
  double grad_clip = 1.0;
  double label_smoothing = 0;      // fairseq's label-smoothed cross-entropy in training (0: off)
  std::string precision = "fp32";  // fp32 | bf16 (matmuls on bf16 inputs, fp32 master weights)
  std::string cpu_gemm = "auto";   // auto | onednn | openblas: the library of fp32 CPU GEMMs
  int64_t log_every = 10;
  int64_t eval_every = 200;
  int64_t eval_batches = 20;     // 0: the whole split
  int64_t checkpoint_every = 0;  // steps between checkpoints (0: only at the end)
  int64_t keep_checkpoints = 2;  // periodic checkpoints kept
  int64_t run_steps = 0;         // stop this invocation after so many steps (0: run to the end)
  // [dist]
  int ep_size = 0;           // ranks that share one set of experts (0: all ranks)
  std::string a2a = "flat";  // flat | hierarchical
  int ranks_per_node = 0;    // 0: from MPI's shared-memory domains
  double timeout_s = 600;    // a collective that makes no progress this long ends the job

  std::string ini;  // the effective configuration as INI text (stored in results and checkpoints)
  std::string ini_given;  // the keys of ini not at their defaults (printed at the start of a run)
  std::string run_dir() const { return results_dir + "/" + name; }
};

// Parses `args` (flags after the subcommand). --config FILE names the INI file. Precedence:
// flags, then the file, then `base_ini` (e.g. the config stored in a checkpoint), then defaults.
// Throws mt::Error naming the file and key on any problem.
Config parse_config(const std::vector<std::string>& args, const std::string& base_ini = "");

// Refuses text holding one of Boost.ProgramOptions' message placeholders (`%value%`, any
// `%word%`): an error message about such a value or key makes Boost loop forever
// (fuzz/config.cpp found it). `where` names the text in the message.
void check_placeholders(const std::string& text, const std::string& where);

// The help text listing every key with its default.
std::string config_help();

}  // namespace mt
