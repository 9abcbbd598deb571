// MPI implementation of ProcessGroup.
#include "comm/mpi_group.hpp"

#include <algorithm>
#include <climits>

#include "comm/hang_watch.hpp"
#include "tensor/error.hpp"

namespace mt {

std::vector<int> ProcessGroup::exchange_counts(const std::vector<int>& send_counts) {
  std::vector<int> recv(send_counts.size());
  all_to_all_ints(send_counts.data(), recv.data(), 1);
  return recv;
}

void ProcessGroup::all_to_all_v(const float* send, const std::vector<int>& send_counts, float* recv,
                                const std::vector<int>& recv_counts) {
  send_offsets_.resize(send_counts.size());
  recv_offsets_.resize(recv_counts.size());
  int64_t s = 0, r = 0;
  for (size_t p = 0; p < send_counts.size(); ++p) send_offsets_[p] = int(s), s += send_counts[p];
  for (size_t p = 0; p < recv_counts.size(); ++p) recv_offsets_[p] = int(r), r += recv_counts[p];
  MT_CHECK(s <= INT_MAX && r <= INT_MAX, "all_to_all_v in '{}': {} floats exceed MPI's int range",
           name(), std::max(s, r));
  start_all_to_all_v(send, send_counts, send_offsets_, recv, recv_counts, recv_offsets_);
  finish_all_to_all();
}

void ProcessGroup::on_root(const std::function<void()>& io) {
  std::string message;
  if (rank() == 0) {
    try {
      io();
    } catch (const Error& e) {
      message = e.what();
      if (message.empty()) message = "failed";
    }
  }
  int64_t n = int64_t(message.size());
  broadcast(&n, sizeof n, 0);
  message.resize(size_t(n));
  if (n > 0) broadcast(message.data(), n, 0);
  MT_CHECK(message.empty(), "{}", message);
}

MpiGroup::MpiGroup(MPI_Comm comm, std::string name) : comm_(comm), name_(std::move(name)) {
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

MpiGroup::MpiGroup(MpiGroup&& o) noexcept
    : comm_(o.comm_),
      name_(std::move(o.name_)),
      rank_(o.rank_),
      size_(o.size_),
      pending_(std::move(o.pending_)),
      in_flight_(o.in_flight_) {
  o.comm_ = MPI_COMM_NULL;
}

MpiGroup::~MpiGroup() {
  if (comm_ != MPI_COMM_NULL && comm_ != MPI_COMM_WORLD && comm_ != MPI_COMM_SELF)
    MPI_Comm_free(&comm_);
}

void MpiGroup::check(int rc, const char* call) const {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  fail("{} failed in group '{}' (rank {} of {}): {}", call, name_, rank_, size_,
       std::string(text, len));
}

void MpiGroup::start_all_to_all_v(const float* send, const std::vector<int>& send_counts,
                                  const std::vector<int>& send_offsets, float* recv,
                                  const std::vector<int>& recv_counts,
                                  const std::vector<int>& recv_offsets) {
  MT_CHECK(int(send_counts.size()) == size_ && int(recv_counts.size()) == size_ &&
               send_offsets.size() == send_counts.size() &&
               recv_offsets.size() == recv_counts.size(),
           "all_to_all_v in '{}': {} send / {} recv counts for {} ranks", name_, send_counts.size(),
           recv_counts.size(), size_);
  // MPI reads the count and offset arrays until the exchange completes: they live in pending_,
  // whose entries are reused from exchange to exchange (no allocation once they have grown).
  if (in_flight_ == pending_.size()) pending_.emplace_back();
  Pending& p = pending_[in_flight_++];
  p.send_counts.assign(send_counts.begin(), send_counts.end());
  p.send_offsets.assign(send_offsets.begin(), send_offsets.end());
  p.recv_counts.assign(recv_counts.begin(), recv_counts.end());
  p.recv_offsets.assign(recv_offsets.begin(), recv_offsets.end());
  check(MPI_Ialltoallv(send, p.send_counts.data(), p.send_offsets.data(), MPI_FLOAT, recv,
                       p.recv_counts.data(), p.recv_offsets.data(), MPI_FLOAT, comm_, &p.request),
        "MPI_Ialltoallv");
}

void MpiGroup::finish_all_to_all() {
  const size_t n = in_flight_;
  in_flight_ = 0;
  for (size_t i = 0; i < n; ++i)
    check(hang_watch::wait(pending_[i].request, name_, "MPI_Alltoallv"), "MPI_Alltoallv");
}

void MpiGroup::all_to_all_ints(const int* send, int* recv, int per_peer) {
  MPI_Request r;
  await(MPI_Ialltoall(send, per_peer, MPI_INT, recv, per_peer, MPI_INT, comm_, &r), r,
        "MPI_Ialltoall", "MPI_Alltoall");
}

void MpiGroup::all_gather_ints(const int* send, int* recv, int count) {
  MPI_Request r;
  await(MPI_Iallgather(send, count, MPI_INT, recv, count, MPI_INT, comm_, &r), r, "MPI_Iallgather",
        "MPI_Allgather");
}

void MpiGroup::all_reduce_sum(float* data, int64_t n) {
  for (int64_t done = 0; done < n; done += INT_MAX) {
    const int chunk = int(std::min<int64_t>(INT_MAX, n - done));
    MPI_Request r;
    await(MPI_Iallreduce(MPI_IN_PLACE, data + done, chunk, MPI_FLOAT, MPI_SUM, comm_, &r), r,
          "MPI_Iallreduce", "MPI_Allreduce");
  }
}

void MpiGroup::all_reduce_sum(double* data, int64_t n) {
  MT_CHECK(n <= INT_MAX, "all_reduce_sum in '{}': {} doubles", name_, n);
  MPI_Request r;
  await(MPI_Iallreduce(MPI_IN_PLACE, data, int(n), MPI_DOUBLE, MPI_SUM, comm_, &r), r,
        "MPI_Iallreduce", "MPI_Allreduce");
}

void MpiGroup::broadcast(void* data, int64_t bytes, int root) {
  MT_CHECK(bytes <= INT_MAX, "broadcast in '{}': {} bytes", name_, bytes);
  MPI_Request r;
  await(MPI_Ibcast(data, int(bytes), MPI_BYTE, root, comm_, &r), r, "MPI_Ibcast", "MPI_Bcast");
}

void MpiGroup::gather(const float* send, int64_t count, float* recv, int root) {
  MT_CHECK(count <= INT_MAX, "gather in '{}': {} floats", name_, count);
  MPI_Request r;
  await(MPI_Igather(send, int(count), MPI_FLOAT, recv, int(count), MPI_FLOAT, root, comm_, &r), r,
        "MPI_Igather", "MPI_Gather");
}

void MpiGroup::await(int started, MPI_Request& request, const char* start_call,
                     const char* call) const {
  check(started, start_call);
  check(hang_watch::wait(request, name_, call), call);
}

MpiGroup MpiGroup::split(int color, int key, std::string name) const {
  MPI_Comm out;
  check(MPI_Comm_split(comm_, color, key, &out), "MPI_Comm_split");
  return MpiGroup(out, std::move(name));
}

}  // namespace mt
