// The NCCL token exchange and gradient all-reduce against the MPI ones, under mpirun with one
// rank per GPU (skipped where the ranks outnumber the visible GPUs). Pure data movement: the
// bytes must be equal; the all-reduce of integers-valued floats too.
#include <gtest/gtest.h>
#include <mpi.h>

#include <vector>

#include "comm/all_to_all.hpp"
#include "comm/nccl_group.hpp"
#include "comm/topology.hpp"
#include "tensor/buffer.hpp"
#include "tensor/cuda/runtime.hpp"
#include "tensor/ops.hpp"
#include "tensor/rng.hpp"

namespace mt {
namespace {

class Nccl : public ::testing::Test {
 protected:
  void SetUp() override {
    const Topology t = discover_topology(0);
    const int gpus = cuda::device_count();
    if (gpus < t.local_size)
      GTEST_SKIP() << t.local_size << " ranks on this machine but " << gpus
                   << " visible GPUs: NCCL tests skipped";
    cuda::use_device(t.machine_rank);
  }
};

// floats on the GPU from a host vector, and back.
Buffer upload(const std::vector<float>& v) {
  Buffer b(Device::CUDA, int64_t(v.size()));
  ops::copy(Tensor{const_cast<float*>(v.data()), {int64_t(v.size())}}, b.view({int64_t(v.size())}));
  return b;
}
std::vector<float> download(const Buffer& b, int64_t n) {
  std::vector<float> v(n);
  ops::copy(b.view({n}), Tensor{v.data(), {n}});
  return v;
}

TEST_F(Nccl, FlatAndHierarchicalExchangesDeliverWhatMpiDelivers) {
  const int W = [] {
    int w = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &w);
    return w;
  }();
  for (int rpn : {1, 2}) {
    if (W % rpn) continue;
    Groups g = make_groups(0, rpn);
    NcclGroup ep(*g.ep), intra(*g.ep_intra), inter(*g.ep_inter);
    FlatAllToAll mpi(*g.ep), flat(ep);
    HierarchicalAllToAll hier(ep, intra, inter);
    const int me = g.ep_rank();
    for (uint64_t round = 0; round < 4; ++round) {
      const Rng rng(42, stream_id({round, uint64_t(me)}));
      std::vector<int> send_counts(W);
      std::vector<float> send;
      for (int p = 0; p < W; ++p) {
        send_counts[p] = (round == 1 && p == W - 1) ? 0 : int(rng.below(p, 5000));
        for (int i = 0; i < send_counts[p]; ++i) send.push_back(rng.normal(1000 + send.size()));
      }
      const std::vector<int> recv_counts = g.ep->exchange_counts(send_counts);
      int64_t n = 0;
      for (int c : recv_counts) n += c;
      std::vector<float> expect(n + 1);
      mpi.exchange(mpi.plan(send_counts, recv_counts), send.data(), expect.data(), false);
      expect.pop_back();
      const Buffer dsend = upload(send);
      for (AllToAll* a2a : {static_cast<AllToAll*>(&flat), static_cast<AllToAll*>(&hier)}) {
        Buffer drecv(Device::CUDA, n + 1);
        const A2aPlan plan = a2a->plan(send_counts, recv_counts);
        a2a->exchange(plan, dsend.data(), drecv.data(), false);
        EXPECT_EQ(download(drecv, n), expect) << "ranks_per_node " << rpn << " round " << round;
        Buffer dback(Device::CUDA, int64_t(send.size()) + 1);
        a2a->exchange(plan, drecv.data(), dback.data(), true);
        EXPECT_EQ(download(dback, int64_t(send.size())), send)
            << "back, ranks_per_node " << rpn << " round " << round;
      }
    }
  }
}

TEST_F(Nccl, AllReduceAndGatherMatchMpi) {
  Groups g = make_groups(0, 0);
  NcclGroup world(*g.world);
  const int me = g.world->rank(), W = g.world->size();
  std::vector<float> v(1000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = float((me + 1) * int(i % 17));  // exact sums
  Buffer d = upload(v);
  world.all_reduce_sum(d.data(), int64_t(v.size()));
  g.world->all_reduce_sum(v.data(), int64_t(v.size()));
  EXPECT_EQ(download(d, int64_t(v.size())), v);
  Buffer all(Device::CUDA, int64_t(v.size()) * W);
  std::vector<float> expect(v.size() * W);
  world.gather(d.data(), int64_t(v.size()), all.data(), 0);
  g.world->gather(v.data(), int64_t(v.size()), expect.data(), 0);
  if (me == 0) {
    EXPECT_EQ(download(all, int64_t(expect.size())), expect);
  }
}

}  // namespace
}  // namespace mt
