// Topology discovery and group construction with MPI_Comm_split(_type).
#include "comm/topology.hpp"

#include <vector>

#include "tensor/error.hpp"

namespace mt {

Topology discover_topology(int ranks_per_node, MPI_Comm base) {
  Topology t;
  MPI_Comm_rank(base, &t.world_rank);
  MPI_Comm_size(base, &t.world_size);
  MPI_Comm shared;
  MPI_Comm_split_type(base, MPI_COMM_TYPE_SHARED, t.world_rank, MPI_INFO_NULL, &shared);
  MPI_Comm_rank(shared, &t.machine_rank);
  int machine_size = 1;
  MPI_Comm_size(shared, &machine_size);
  MPI_Comm_free(&shared);
  if (ranks_per_node > 0) {
    MT_CHECK(t.world_size % ranks_per_node == 0,
             "dist.ranks_per_node = {} does not divide the world size {}", ranks_per_node,
             t.world_size);
    t.local_size = ranks_per_node;
  } else {
    t.local_size = machine_size;
    // Nodes must be equal blocks of consecutive ranks (mpirun --map-by node breaks this).
    std::vector<int> sizes(t.world_size);
    MPI_Allgather(&t.local_size, 1, MPI_INT, sizes.data(), 1, MPI_INT, base);
    for (int s : sizes)
      MT_CHECK(s == t.local_size, "nodes hold different numbers of ranks ({} and {})", s,
               t.local_size);
  }
  t.node = t.world_rank / t.local_size;
  t.local_rank = t.world_rank % t.local_size;
  t.num_nodes = t.world_size / t.local_size;
  return t;
}

Groups make_groups(int ep_size, int ranks_per_node, MPI_Comm base) {
  Groups g;
  g.topo = discover_topology(ranks_per_node, base);
  const Topology& t = g.topo;
  if (ep_size == 0) ep_size = t.world_size;
  MT_CHECK(ep_size > 0 && t.world_size % ep_size == 0,
           "dist.ep_size = {} does not divide the world size {}", ep_size, t.world_size);
  MPI_Comm world;
  MPI_Comm_dup(base, &world);
  g.world = std::make_unique<MpiGroup>(world, "world");
  const int ep_index = t.world_rank / ep_size, ep_rank = t.world_rank % ep_size;
  g.ep = std::make_unique<MpiGroup>(g.world->split(ep_index, ep_rank, "ep"));
  g.expert_dp = std::make_unique<MpiGroup>(g.world->split(ep_rank, ep_index, "expert_dp"));
  // Node-local part of the EP group, and the ranks of equal local position across its nodes.
  const int intra_color = t.node, inter_color = t.local_rank;
  g.ep_intra = std::make_unique<MpiGroup>(g.ep->split(intra_color, ep_rank, "ep_intra"));
  g.ep_inter = std::make_unique<MpiGroup>(g.ep->split(inter_color, ep_rank, "ep_inter"));
  return g;
}

}  // namespace mt
