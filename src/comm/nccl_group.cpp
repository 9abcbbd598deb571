// NCCL process group: bootstrap over MPI, grouped send/recv all-to-all, all-reduce, gather.
#include "comm/nccl_group.hpp"

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstdlib>
#include <exception>
#include <thread>

#include "tensor/cuda/runtime.hpp"
#include "tensor/error.hpp"

namespace mt {

namespace {
ncclComm_t as_comm(void* c) {
  return static_cast<ncclComm_t>(c);
}
cudaStream_t cu_stream() {
  return static_cast<cudaStream_t>(cuda::stream());
}
double timeout_from_env() {
  const char* s = std::getenv("MOETRAIN_NCCL_TIMEOUT_S");
  if (!s) return 600.0;
  char* end = nullptr;
  const double v = std::strtod(s, &end);
  MT_CHECK(end != s && *end == '\0' && v > 0,
           "MOETRAIN_NCCL_TIMEOUT_S = '{}' (a positive number of seconds)", s);
  return v;
}
}  // namespace

NcclGroup::NcclGroup(MpiGroup& host)
    : host_(host), name_(host.name() + " (nccl)"), timeout_s_(timeout_from_env()) {
  ncclUniqueId id{};
  if (host_.rank() == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
  host_.broadcast(&id, sizeof id, 0);
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclComm_t comm = nullptr;
  check(ncclCommInitRankConfig(&comm, host_.size(), id, host_.rank(), &config),
        "ncclCommInitRankConfig");
  comm_ = comm;
  wait("ncclCommInitRankConfig");
}

NcclGroup::~NcclGroup() {
  if (!comm_) return;
  // Unwinding from an error, peers may be gone: abort (local, never waits) instead of destroy.
  if (std::uncaught_exceptions() > 0)
    ncclCommAbort(as_comm(comm_));
  else
    ncclCommDestroy(as_comm(comm_));
}

void NcclGroup::check(int result, const char* call) {
  if (result == ncclSuccess || result == ncclInProgress) return;
  const std::string what = ncclGetErrorString(ncclResult_t(result));
  const char* last = comm_ ? ncclGetLastError(as_comm(comm_)) : nullptr;
  if (comm_) ncclCommAbort(as_comm(comm_)), comm_ = nullptr;
  fail("{} in group '{}' (rank {} of {}): {}{}{}", call, name_, rank(), size(), what,
       last && *last ? ": " : "", last ? last : "");
}

void NcclGroup::wait(const char* call) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s_);
  for (;;) {
    ncclResult_t state = ncclSuccess;
    check(ncclCommGetAsyncError(as_comm(comm_), &state), call);
    check(state, call);
    if (state == ncclSuccess) {
      const cudaError_t q = cudaStreamQuery(cu_stream());
      if (q == cudaSuccess) return;
      if (q != cudaErrorNotReady) cuda::check(q, call);
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ncclCommAbort(as_comm(comm_));
      comm_ = nullptr;
      fail(
          "{} in group '{}' (rank {} of {}): no progress in {} s (a peer is gone?); "
          "MOETRAIN_NCCL_TIMEOUT_S sets the limit",
          call, name_, rank(), size(), timeout_s_);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

void NcclGroup::start_all_to_all_v(const float* send, const std::vector<int>& send_counts,
                                   const std::vector<int>& send_offsets, float* recv,
                                   const std::vector<int>& recv_counts,
                                   const std::vector<int>& recv_offsets) {
  MT_CHECK(int(send_counts.size()) == size() && int(recv_counts.size()) == size() &&
               send_offsets.size() == send_counts.size() &&
               recv_offsets.size() == recv_counts.size(),
           "all_to_all_v in '{}': counts for {} and {} peers", name_, send_counts.size(),
           recv_counts.size());
  check(ncclGroupStart(), "ncclGroupStart");
  for (int p = 0; p < size(); ++p) {
    if (send_counts[p] > 0)
      check(ncclSend(send + send_offsets[p], size_t(send_counts[p]), ncclFloat, p, as_comm(comm_),
                     cu_stream()),
            "ncclSend");
    if (recv_counts[p] > 0)
      check(ncclRecv(recv + recv_offsets[p], size_t(recv_counts[p]), ncclFloat, p, as_comm(comm_),
                     cu_stream()),
            "ncclRecv");
  }
  check(ncclGroupEnd(), "ncclGroupEnd");
}

// The rank's stream runs what was queued in order: once it is idle, every exchange is done.
void NcclGroup::finish_all_to_all() {
  wait("all_to_all_v");
}

void NcclGroup::all_reduce_sum(float* data, int64_t n) {
  if (n > 0)
    check(ncclAllReduce(data, data, size_t(n), ncclFloat, ncclSum, as_comm(comm_), cu_stream()),
          "ncclAllReduce");
  wait("all_reduce_sum");
}

void NcclGroup::gather(const float* send, int64_t count, float* recv, int root) {
  check(ncclGroupStart(), "ncclGroupStart");
  if (rank() == root)
    for (int p = 0; p < size(); ++p)
      check(ncclRecv(recv + p * count, size_t(count), ncclFloat, p, as_comm(comm_), cu_stream()),
            "ncclRecv");
  check(ncclSend(send, size_t(count), ncclFloat, root, as_comm(comm_), cu_stream()), "ncclSend");
  check(ncclGroupEnd(), "ncclGroupEnd");
  wait("gather");
}

void NcclGroup::all_to_all_ints(const int* send, int* recv, int per_peer) {
  host_.all_to_all_ints(send, recv, per_peer);
}

void NcclGroup::all_gather_ints(const int* send, int* recv, int count) {
  host_.all_gather_ints(send, recv, count);
}

void NcclGroup::all_reduce_sum(double* data, int64_t n) {
  host_.all_reduce_sum(data, n);
}

void NcclGroup::broadcast(void* data, int64_t bytes, int root) {
  host_.broadcast(data, bytes, root);
}

}  // namespace mt
