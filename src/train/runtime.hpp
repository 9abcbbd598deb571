// Runtime: the process groups and token exchange of a run, and the model built for this rank
// (its expert shard; the hash table when the gate hashes token ids).
#pragma once
#include <map>
#include <memory>
#include <vector>

#include "comm/all_to_all.hpp"
#include "comm/topology.hpp"
#include "io/config.hpp"
#include "model/gpt.hpp"
#include "tensor/device.hpp"

namespace mt {

// The groups that carry the device's payloads (token exchange, gradient all-reduce): the MPI
// groups on the CPU; on CUDA, NCCL communicators over the same ranks.
struct PayloadGroups {
  ProcessGroup *world = nullptr, *ep = nullptr, *expert_dp = nullptr;
  ProcessGroup *ep_intra = nullptr, *ep_inter = nullptr;
  std::vector<std::unique_ptr<ProcessGroup>> nccl;  // owned, CUDA only
};

struct Runtime {
  Device device = Device::CPU;
  Groups groups;  // MPI, host data: plans, counts, metrics, checkpoints
  PayloadGroups payload;
  std::unique_ptr<AllToAll> a2a;  // over the payload groups
  int rank() const { return groups.topo.world_rank; }
  int ranks() const { return groups.topo.world_size; }
  bool root() const { return rank() == 0; }
  ExpertLayout layout() const { return {groups.ep_rank(), groups.ep_size()}; }
  std::string describe() const;  // "4 cpu ranks (2 nodes x 2), ep_size 4, GEMMs: onednn"
};

// What a results file records of the run (collective: gathers every rank's host name): world
// (describe()), hosts (the distinct host names in rank order, comma-separated), start_time (now,
// UTC, ISO 8601) and, under Slurm, slurm_job_id.
std::map<std::string, std::string> run_attributes(const Runtime& rt);

// Over the ranks of `base` (tests run single-rank references on MPI_COMM_SELF). Sets the matmul
// precision of train.precision (ops::set_bf16_matmul; bf16 on the CPU stops with a message where
// the CPU lacks AVX512_BF16) and the CPU GEMM library of train.cpu_gemm (cpu::set_gemm).
Runtime make_runtime(const Config& cfg, Device device = Device::CPU,
                     MPI_Comm base = MPI_COMM_WORLD);

// Sequences per rank and step; checks that the batch splits over the ranks.
int64_t local_batch(const Config& cfg, const Runtime& rt);
// Sequences per rank and forward pass (train.micro_batch_size, 0: the whole local batch); checks
// that they divide the local batch and split into whole capacity groups.
int64_t micro_batch(const Config& cfg, const Runtime& rt);

// The hash gate's table (empty unless moe.gate = hash): balanced from the unigram counts of the
// data's training split, or random from the seed.
std::vector<int32_t> hash_table(const Config& cfg, int64_t vocab);

// The model of `cfg` over `vocab` tokens on this rank's share of the experts, its parameters
// registered in `reg` and allocated on the runtime's device (not yet initialised): what train,
// eval and bench all run.
Gpt build_model(const Config& cfg, const Runtime& rt, int64_t vocab, ParamRegistry& reg);

}  // namespace mt
