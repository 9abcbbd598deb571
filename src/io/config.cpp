// Config parsing with Boost.ProgramOptions: one options table serves the INI file, the command
// line, the help text and the effective-config dump.
#include "io/config.hpp"

#include <boost/program_options.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "model/gate_registry.hpp"
#include "tensor/error.hpp"

namespace po = boost::program_options;

namespace mt {

namespace {

// Renders a parsed value; the options table only uses these types.
std::string value_text(const boost::any& v) {
  if (auto p = boost::any_cast<std::string>(&v)) return *p;
  if (auto p = boost::any_cast<int64_t>(&v)) return std::to_string(*p);
  if (auto p = boost::any_cast<uint64_t>(&v)) return std::to_string(*p);
  if (auto p = boost::any_cast<double>(&v)) return fmt::format("{}", *p);
  if (auto p = boost::any_cast<float>(&v)) return fmt::format("{}", *p);
  if (auto p = boost::any_cast<int>(&v)) return std::to_string(*p);
  if (auto p = boost::any_cast<bool>(&v)) return *p ? "true" : "false";
  return "?";
}

// A key bound to v with v as its default, shown as value_text shows it (0.9, not 0.899999976;
// true, not 1).
template <typename T>
po::typed_value<T>* value(T& v) {
  return po::value(&v)->default_value(v, value_text(boost::any(v)));
}

po::options_description options(Config& c) {
  po::options_description d("configuration (INI [section] key = value, or --section.key value)");
  auto& s = c.schedule;
  auto& a = c.adamw;
  auto& m = c.model;
  auto& e = c.model.moe;
  // clang-format off
  d.add_options()
    ("run.name", value(c.name), "run name: results go to <results_dir>/<name>")
    ("run.seed", value(c.seed), "seed of every random stream")
    ("run.results_dir", value(c.results_dir), "where run folders are made")
    ("run.overwrite", value(c.overwrite), "a fresh run may replace an earlier run's results and checkpoints in its folder (false: it refuses)")
    ("data.dir", value(c.data_dir), "prepared corpus (moetrain prepare --output)")
    ("model.seq_len", value(m.seq_len), "context length T")
    ("model.d_model", value(m.d_model), "model width d")
    ("model.n_layer", value(m.n_layer), "number of blocks")
    ("model.n_head", value(m.n_head), "attention heads (divides d_model)")
    ("model.d_ff", value(m.d_ff), "FFN hidden width")
    ("model.dropout", value(m.dropout), "dropout in training at the embeddings, attention probabilities, attention output and FFN/MoE output (0: off)")
    ("moe.experts", value(e.num_experts), "experts per MoE layer (0: dense model)")
    ("moe.every", value(e.every), "block i is MoE when i % every == every - 1")
    ("moe.gate", value(e.gate), ("router: " + gate_names()).c_str())
    ("moe.capacity_factor", value(e.capacity_factor), "expert capacity = ceil(cf * k * group tokens / E) in training")
    ("moe.eval_capacity_factor", value(e.eval_capacity_factor), "capacity factor at evaluation")
    ("moe.dropless", value(e.dropless), "no capacity limit (no dropped tokens)")
    ("moe.aux_weight", value(e.aux_weight), "Switch load-balancing loss weight")
    ("moe.z_weight", value(e.z_weight), "router z-loss weight")
    ("moe.group_sequences", value(e.group_sequences), "sequences per capacity and aux-loss group")
    ("moe.d_ff", value(e.d_ff), "expert hidden width (0: model.d_ff)")
    ("moe.hash", value(e.hash), "hash table: balanced (unigram counts) | random")
    ("thor.alpha", value(e.thor_alpha), "THOR: weight of the consistency term (symmetric KL of the two passes)")
    ("evo.diversify_step", value(e.evo_diversify_step), "EvoMoE: step at which E experts are spawned from the one trained expert (0: 15% of train.steps)")
    ("evo.mask_ratio", value(e.evo_mask_ratio), "EvoMoE: fraction of each spawned expert's weights masked to zero")
    ("evo.threshold", value(e.evo_threshold), "EvoMoE: dense-to-sparse gate activation threshold")
    ("evo.tau_max", value(e.evo_tau_max), "EvoMoE: initial temperature")
    ("evo.tau_min", value(e.evo_tau_min), "EvoMoE: final temperature, then top-1")
    ("evo.anneal_steps", value(e.evo_anneal_steps), "EvoMoE: steps of temperature annealing (0: 50% of train.steps)")
    ("evo.schedule", value(e.evo_schedule), "EvoMoE: temperature from tau_max to tau_min, linear | exp")
    ("evo.gumbel_weights", value(e.evo_gumbel_weights), "EvoMoE: combine with the Gumbel-softmax value instead of the clean softmax of the logits")
    ("gd.p", value(e.gd_p), "Gating Dropout: probability that a step routes every token to its own rank's experts")
    ("gd.mode", value(e.gd_mode), "gate_drop (local expert) | gate_expert_drop (skip the experts)")
    ("gd.weight", value(e.gd_weight), "weight of the local expert on a drop step: gate (its gate probability, held constant) | one")
    ("gd.coin", value(e.gd_coin), "step (one coin for every MoE layer) | layer (one per MoE layer)")
    ("dist.ep_size", value(c.ep_size), "ranks sharing one set of experts (0: all)")
    ("dist.a2a", value(c.a2a), "token all-to-all: flat | hierarchical")
    ("dist.ranks_per_node", value(c.ranks_per_node), "ranks per node (0: detect; >0: one machine stands for several nodes)")
    ("dist.timeout_s", value(c.timeout_s), "seconds a collective may make no progress before the job ends with a report of who it waited on (0: wait forever)")
    ("train.batch_size", value(c.batch_size), "sequences per step")
    ("train.micro_batch_size", value(c.micro_batch_size), "sequences per rank per forward and backward, accumulated into train.batch_size (0: the whole batch at once)")
    ("train.steps", value(c.steps), "optimizer steps")
    ("train.lr", value(s.lr), "peak learning rate")
    ("train.min_lr", value(s.min_lr), "final learning rate (cosine)")
    ("train.warmup", value(s.warmup), "linear warmup steps")
    ("train.schedule", value(s.kind), "cosine | inv_sqrt | constant")
    ("train.precision", value(c.precision), "fp32 | bf16: matmuls take bf16 inputs with fp32 accumulation (CPU: oneDNN, needs AVX512_BF16; CUDA: tensor cores); the routers, weights, optimizer state and every other op stay fp32")
    ("train.cpu_gemm", value(c.cpu_gemm), "auto | onednn | openblas: the library of every fp32 product on the CPU, one for the whole run (auto: OpenBLAS where it runs its AMD Zen kernels, oneDNN elsewhere)")
    ("train.beta1", value(a.beta1), "AdamW beta1")
    ("train.beta2", value(a.beta2), "AdamW beta2")
    ("train.eps", value(a.eps), "AdamW epsilon")
    ("train.weight_decay", value(a.weight_decay), "decoupled weight decay (matrices only)")
    ("train.grad_clip", value(c.grad_clip), "global gradient-norm limit (0: off)")
    ("train.label_smoothing", value(c.label_smoothing), "label smoothing eps in training, as fairseq's: 1 - eps on the target, eps / (V - 1) on every other token (0: off)")
    ("train.log_every", value(c.log_every), "steps between progress lines and results flushes")
    ("train.eval_every", value(c.eval_every), "steps between validations (0: only at the end)")
    ("train.eval_batches", value(c.eval_batches), "validation batches (0: the whole split)")
    ("train.checkpoint_every", value(c.checkpoint_every), "steps between checkpoints in <run>/checkpoints/ (0: only the final one)")
    ("train.keep_checkpoints", value(c.keep_checkpoints), "periodic checkpoints kept (older ones deleted)")
    ("train.run_steps", value(c.run_steps), "stop this invocation after so many steps, with a checkpoint (0: train to the end)");
  // clang-format on
  for (const GateKey& k : gate_keys())
    std::visit([&](auto& v) { d.add_options()(k.name.c_str(), value(v), k.help.c_str()); },
               e.keys.slot(k));
  return d;
}

// Every key's value as INI text; given_only: the keys a flag, the file or base_ini set.
std::string to_ini(const po::variables_map& vm, const po::options_description& d, bool given_only) {
  std::map<std::string, std::vector<std::string>> sections;
  for (const auto& opt : d.options()) {
    const std::string& key = opt->long_name();
    if (given_only && vm[key].defaulted()) continue;
    const size_t dot = key.find('.');
    sections[key.substr(0, dot)].push_back(key.substr(dot + 1) + " = " +
                                           value_text(vm[key].value()));
  }
  std::string out;
  for (const auto& [name, lines] : sections) {
    out += "[" + name + "]\n";
    for (const auto& l : lines) out += l + "\n";
  }
  return out;
}

void validate(const Config& c) {
  const auto& m = c.model;
  auto positive = [](int64_t v, const char* key) {
    MT_CHECK(v > 0, "config: {} must be positive, got {}", key, v);
  };
  positive(m.seq_len, "model.seq_len");
  positive(m.d_model, "model.d_model");
  positive(m.n_layer, "model.n_layer");
  positive(m.n_head, "model.n_head");
  positive(m.d_ff, "model.d_ff");
  positive(c.batch_size, "train.batch_size");
  positive(c.steps, "train.steps");
  MT_CHECK(c.micro_batch_size >= 0, "config: train.micro_batch_size must be >= 0");
  MT_CHECK(m.dropout >= 0 && m.dropout < 1, "config: model.dropout = {} (0 <= p < 1)", m.dropout);
  MT_CHECK(c.label_smoothing >= 0 && c.label_smoothing < 1,
           "config: train.label_smoothing = {} (0 <= eps < 1)", c.label_smoothing);
  positive(c.log_every, "train.log_every");
  MT_CHECK(m.d_model % m.n_head == 0,
           "config: model.d_model = {} is not divisible by model.n_head = {}", m.d_model, m.n_head);
  MT_CHECK(c.schedule.lr > 0 && c.schedule.min_lr >= 0,
           "config: train.lr must be > 0 and train.min_lr >= 0");
  MT_CHECK(c.schedule.warmup >= 0, "config: train.warmup must be >= 0");
  MT_CHECK(
      c.schedule.kind == "cosine" || c.schedule.kind == "inv_sqrt" || c.schedule.kind == "constant",
      "config: train.schedule = '{}' (expected cosine, inv_sqrt or constant)", c.schedule.kind);
  MT_CHECK(
      c.checkpoint_every >= 0 && c.keep_checkpoints >= 1 && c.run_steps >= 0,
      "config: train.checkpoint_every >= 0, train.keep_checkpoints >= 1, train.run_steps >= 0");
  MT_CHECK(c.eval_every >= 0 && c.eval_batches >= 0,
           "config: train.eval_every and train.eval_batches must be >= 0");
  const auto& e = m.moe;
  MT_CHECK(e.num_experts >= 0 && e.every > 0 && e.group_sequences > 0 && e.d_ff >= 0,
           "config: moe.experts >= 0, moe.every > 0, moe.group_sequences > 0, moe.d_ff >= 0");
  MT_CHECK(is_gate(e.gate), "config: moe.gate = '{}' ({})", e.gate, gate_names());
  MT_CHECK(
      e.evo_diversify_step >= 0 && e.evo_anneal_steps >= 0 && e.evo_mask_ratio >= 0 &&
          e.evo_mask_ratio < 1 && e.evo_threshold > 0 && e.evo_tau_min > 0 &&
          e.evo_tau_max >= e.evo_tau_min,
      "config: evo.* out of range (0 <= mask_ratio < 1, threshold > 0, 0 < tau_min <= tau_max)");
  MT_CHECK(e.evo_schedule == "linear" || e.evo_schedule == "exp",
           "config: evo.schedule = '{}' (linear or exp)", e.evo_schedule);
  MT_CHECK(e.thor_alpha >= 0, "config: thor.alpha must be >= 0");
  MT_CHECK(e.hash == "balanced" || e.hash == "random",
           "config: moe.hash = '{}' (balanced or random)", e.hash);
  MT_CHECK(e.num_experts == 0 || e.num_experts >= gate_traits(e).min_experts,
           "config: moe.gate = {} needs at least {} experts", e.gate, gate_traits(e).min_experts);
  for (const GateKey& k : gate_keys()) e.keys.check(k);
  MT_CHECK(e.capacity_factor > 0 && e.eval_capacity_factor > 0,
           "config: capacity factors must be > 0");
  MT_CHECK(e.gd_p >= 0 && e.gd_p <= 1, "config: gd.p = {} (a probability)", e.gd_p);
  MT_CHECK(e.gd_mode == "gate_drop" || e.gd_mode == "gate_expert_drop",
           "config: gd.mode = '{}' (gate_drop or gate_expert_drop)", e.gd_mode);
  MT_CHECK(e.gd_weight == "gate" || e.gd_weight == "one", "config: gd.weight = '{}' (gate or one)",
           e.gd_weight);
  MT_CHECK(e.gd_coin == "step" || e.gd_coin == "layer", "config: gd.coin = '{}' (step or layer)",
           e.gd_coin);
  MT_CHECK(m.n_layer <= 64 || e.gd_p == 0,
           "config: Gating Dropout handles at most 64 blocks (model.n_layer = {})", m.n_layer);
  MT_CHECK(e.gd_p == 0 || find_gate(e.gate).traits.local_routing,
           "config: gd.p > 0 needs a gate with local routing (moe.gate = switch or gshard)");
  MT_CHECK(e.gd_p == 0 || !permuted(e),
           "config: gd.p > 0 and perm.steps > 0: Gating Dropout's local expert would move with "
           "the permutation");
  MT_CHECK(c.precision == "fp32" || c.precision == "bf16",
           "config: train.precision = '{}' (fp32 or bf16)", c.precision);
  MT_CHECK(c.cpu_gemm == "auto" || c.cpu_gemm == "onednn" || c.cpu_gemm == "openblas",
           "config: train.cpu_gemm = '{}' (auto, onednn or openblas)", c.cpu_gemm);
  MT_CHECK(c.a2a == "flat" || c.a2a == "hierarchical",
           "config: dist.a2a = '{}' (flat or hierarchical)", c.a2a);
  MT_CHECK(c.ep_size >= 0 && c.ranks_per_node >= 0 && c.timeout_s >= 0,
           "config: dist.ep_size, dist.ranks_per_node and dist.timeout_s must be >= 0");
  MT_CHECK(!c.name.empty() && c.name.find('/') == std::string::npos,
           "config: run.name '{}' must be a non-empty name without '/'", c.name);
}

}  // namespace

void check_placeholders(const std::string& text, const std::string& where) {
  static const std::regex placeholder("%[A-Za-z_]+%");
  std::smatch m;
  MT_CHECK(!std::regex_search(text, m, placeholder),
           "{} holds '{}': text of this form is refused (Boost.ProgramOptions would loop forever "
           "reporting an error about it)",
           where, m.str());
}

Config parse_config(const std::vector<std::string>& args, const std::string& base_ini) {
  for (const std::string& a : args) check_placeholders(a, "config: the command line");
  check_placeholders(base_ini, "config: the checkpoint's stored config");
  Config c;
  po::options_description d = options(c);
  po::options_description cli("command line");
  std::string config_file;
  cli.add_options()("config", po::value(&config_file), "INI file with the run's configuration");
  cli.add(d);
  po::variables_map vm;
  try {
    po::parsed_options parsed = po::command_line_parser(args).options(cli).run();
    // A word that is no flag (a stray word, or Hydra's `train.lr=1`) would be dropped silently.
    for (const po::option& o : parsed.options)
      if (o.position_key >= 0)
        fail("config: unexpected word '{}' (flags are --section.key VALUE or --section.key=VALUE)",
             o.value.empty() ? std::string() : o.value.front());
    // A flag given twice: the last one wins (scripts set defaults, users append overrides).
    std::set<std::string> seen;
    auto& opts = parsed.options;
    for (auto it = opts.rbegin(); it != opts.rend(); ++it)
      if (!seen.insert(it->string_key).second) it->string_key.clear();
    std::erase_if(opts, [](const po::option& o) { return o.string_key.empty(); });
    po::store(parsed, vm);
    if (vm.count("config")) {
      config_file = vm["config"].as<std::string>();
      std::ifstream file(config_file);
      MT_CHECK(file, "config: cannot open '{}'", config_file);
      std::stringstream in;
      in << file.rdbuf();
      check_placeholders(in.str(), "config: '" + config_file + "'");
      try {
        po::store(po::parse_config_file(in, d, /*allow_unregistered=*/false), vm);
      } catch (const po::error& e) {
        fail("config: {}: {}", config_file, e.what());
      }
    }
    if (!base_ini.empty()) {
      std::istringstream in(base_ini);
      po::store(po::parse_config_file(in, d, /*allow_unregistered=*/false), vm);
    }
    po::notify(vm);
  } catch (const po::error& e) {
    fail("config: {}", e.what());
  }
  validate(c);
  c.ini = to_ini(vm, d, false);
  c.ini_given = to_ini(vm, d, true);
  return c;
}

std::string config_help() {
  Config c;
  std::ostringstream s;
  s << options(c);
  return s.str();
}

}  // namespace mt
