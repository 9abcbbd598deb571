// Runtime construction.
#include "train/runtime.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <functional>

#include "comm/hang_watch.hpp"
#include "gates/hash.hpp"
#ifdef MOETRAIN_CUDA
#include "comm/nccl_group.hpp"
#include "tensor/cuda/runtime.hpp"
#endif
#include "io/tokens.hpp"
#include "model/gate_registry.hpp"
#include "tensor/error.hpp"
#include "tensor/ops.hpp"
#include "tensor/ops/bf16.hpp"
#include "tensor/ops/sgemm.hpp"

namespace mt {

namespace {
// bf16 matmuls on the CPU need AVX512_BF16, as oneDNN finds it.
void check_precision(const Config& cfg, Device device) {
  std::string found;
  MT_CHECK(cfg.precision == "fp32" || device == Device::CUDA || cpu::bf16_supported(&found),
           "train.precision = bf16 on the CPU needs AVX512_BF16, and oneDNN finds {} here (use "
           "train.precision = fp32)",
           found);
}
}  // namespace

#ifdef MOETRAIN_CUDA
namespace {
// Local rank -> GPU: the rank among this machine's processes, modulo the GPUs this process sees
// (a scheduler may show each rank only its own). Two ranks on one GPU stop with a message.
void select_gpu(const Groups& g) {
  const int gpus = cuda::device_count();
  MT_CHECK(gpus > 0, "--device cuda: rank {} sees no GPU", g.topo.world_rank);
  const int index = g.topo.machine_rank % gpus;
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  const std::string where = fmt::format("{} {}", host, cuda::device_bus_id(index));
  const uint64_t key = std::hash<std::string>{}(where);
  const int mine[2] = {int(key & 0x7fffffff), int(key >> 33)};
  std::vector<int> all(2 * size_t(g.topo.world_size));
  g.world->all_gather_ints(mine, all.data(), 2);
  for (int r = 0; r < g.topo.world_size; ++r)
    MT_CHECK(r == g.topo.world_rank || all[2 * r] != mine[0] || all[2 * r + 1] != mine[1],
             "--device cuda: ranks {} and {} would share the GPU at {} (run one rank per GPU)",
             std::min(r, g.topo.world_rank), std::max(r, g.topo.world_rank), where);
  cuda::use_device(index);
}
}  // namespace
#endif

Runtime make_runtime(const Config& cfg, Device device, MPI_Comm base) {
  check_precision(cfg, device);
  Runtime rt;
  rt.device = device;
  hang_watch::configure(base, cfg.timeout_s);
  rt.groups = make_groups(cfg.ep_size, cfg.ranks_per_node, base);
  Groups& g = rt.groups;
  PayloadGroups& p = rt.payload;
  p = {g.world.get(), g.ep.get(), g.expert_dp.get(), g.ep_intra.get(), g.ep_inter.get(), {}};
#ifdef MOETRAIN_CUDA
  if (device == Device::CUDA) {
    select_gpu(g);
    for (ProcessGroup** q : {&p.world, &p.ep, &p.expert_dp, &p.ep_intra, &p.ep_inter}) {
      p.nccl.push_back(std::make_unique<NcclGroup>(static_cast<MpiGroup&>(**q)));
      *q = p.nccl.back().get();
    }
  }
#endif
  ops::set_bf16_matmul(cfg.precision == "bf16");
  cpu::set_gemm(cfg.cpu_gemm == "auto"       ? cpu::gemm_for_core(cpu::openblas_core())
                : cfg.cpu_gemm == "openblas" ? cpu::Gemm::OpenBlas
                                             : cpu::Gemm::OneDnn);
  rt.a2a = make_all_to_all(cfg.a2a, *p.ep, *p.ep_intra, *p.ep_inter);
  const int E = cfg.model.moe.num_experts;
  MT_CHECK(E == 0 || E % rt.groups.ep_size() == 0,
           "moe.experts = {} is not divisible by the expert-parallel size {}", E,
           rt.groups.ep_size());
  return rt;
}

std::string Runtime::describe() const {
  const Topology& t = groups.topo;
  const std::string gemms = device != Device::CPU ? ""
                            : ops::bf16_matmul()
                                ? ", GEMMs: onednn bf16"
                                : fmt::format(", GEMMs: {}", cpu::gemm_name(cpu::gemm()));
  return fmt::format("{} {} rank{} ({} node{} x {}), ep_size {}{}", t.world_size,
                     device_name(device), t.world_size > 1 ? "s" : "", t.num_nodes,
                     t.num_nodes > 1 ? "s" : "", t.local_size, groups.ep_size(), gemms);
}

std::map<std::string, std::string> run_attributes(const Runtime& rt) {
  int mine[64] = {};  // this rank's host name, as the ints all_gather_ints carries
  gethostname(reinterpret_cast<char*>(mine), sizeof mine - 1);
  std::vector<int> all(64 * size_t(rt.ranks()));
  rt.groups.world->all_gather_ints(mine, all.data(), 64);
  std::vector<std::string> hosts;
  for (int r = 0; r < rt.ranks(); ++r) {
    const std::string h(reinterpret_cast<const char*>(&all[64 * size_t(r)]));
    if (std::find(hosts.begin(), hosts.end(), h) == hosts.end()) hosts.push_back(h);
  }
  std::map<std::string, std::string> a = {
      {"world", rt.describe()},
      {"hosts", fmt::format("{}", fmt::join(hosts, ","))},
      {"start_time", fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", fmt::gmtime(std::time(nullptr)))}};
  if (const char* job = std::getenv("SLURM_JOB_ID")) a["slurm_job_id"] = job;
  return a;
}

int64_t local_batch(const Config& cfg, const Runtime& rt) {
  MT_CHECK(cfg.batch_size % rt.ranks() == 0,
           "train.batch_size = {} is not divisible by the {} ranks", cfg.batch_size, rt.ranks());
  return cfg.batch_size / rt.ranks();
}

int64_t micro_batch(const Config& cfg, const Runtime& rt) {
  const int64_t b = local_batch(cfg, rt);
  const int64_t m = cfg.micro_batch_size > 0 ? cfg.micro_batch_size : b;
  MT_CHECK(b % m == 0,
           "train.micro_batch_size = {} does not divide the {} sequences per rank "
           "(train.batch_size {} over {} ranks)",
           m, b, cfg.batch_size, rt.ranks());
  MT_CHECK(cfg.model.moe.num_experts == 0 || m % cfg.model.moe.group_sequences == 0,
           "moe.group_sequences = {} does not divide the {} sequences per rank and micro-batch",
           cfg.model.moe.group_sequences, m);
  return m;
}

std::vector<int32_t> hash_table(const Config& cfg, int64_t vocab) {
  const MoeConfig& m = cfg.model.moe;
  if (!gate_traits(m).hash_table) return {};
  if (m.hash == "random") return random_hash(vocab, m.num_experts, cfg.seed);
  const TokenSplit train = read_tokens(cfg.data_dir + "/train.h5");
  std::vector<int64_t> counts(vocab, 0);
  train.for_each_block([&](const int32_t* t, int64_t n) {
    for (int64_t i = 0; i < n; ++i) ++counts[t[i]];
  });
  return balanced_hash(counts, m.num_experts);
}

Gpt build_model(const Config& cfg, const Runtime& rt, int64_t vocab, ParamRegistry& reg) {
  GptConfig mc = cfg.model;
  mc.vocab = vocab;
  Gpt model(mc, reg, rt.layout(), hash_table(cfg, vocab));
  reg.allocate(rt.device);
  return model;
}

}  // namespace mt
