// Topology (world, node and local rank) and the process groups of expert parallelism:
// W = ep_size x dp_size; an EP group is ep_size consecutive ranks that exchange tokens; the
// ranks with the same position in every EP group hold the same experts (the expert-DP group).
#pragma once
#include <memory>
#include <string>

#include "comm/mpi_group.hpp"

namespace mt {

struct Topology {
  int world_rank = 0, world_size = 1;
  int node = 0, num_nodes = 1, local_rank = 0, local_size = 1;
  int machine_rank = 0;  // among the processes of this machine (the GPU a rank takes)
};

// ranks_per_node > 0: blocks of that many consecutive ranks stand for nodes (tests, one machine
// standing for several). Otherwise nodes are MPI's shared-memory domains, which must be blocks of
// consecutive ranks of equal size.
Topology discover_topology(int ranks_per_node, MPI_Comm base = MPI_COMM_WORLD);

struct Groups {
  Topology topo;
  std::unique_ptr<MpiGroup> world;      // dense gradients, plan broadcast, metrics
  std::unique_ptr<MpiGroup> ep;         // token exchange
  std::unique_ptr<MpiGroup> expert_dp;  // expert gradients
  // Within the EP group, for the hierarchical all-to-all: the ranks on my node, and the ranks
  // with my local index on every node the group spans.
  std::unique_ptr<MpiGroup> ep_intra, ep_inter;
  int ep_size() const { return ep->size(); }
  int ep_rank() const { return ep->rank(); }
  int ep_index() const { return topo.world_rank / ep->size(); }  // which EP group
};

// The groups over the ranks of `base` (its duplicate is the "world" of the run). ep_size 0 means
// all ranks. Throws mt::Error if ep_size does not divide the world size.
Groups make_groups(int ep_size, int ranks_per_node, MPI_Comm base = MPI_COMM_WORLD);

}  // namespace mt
