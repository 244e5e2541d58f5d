#include "mpi/comm.hpp"
#include "mpi/watchdog.hpp"

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <stdexcept>

#include "util/phases.hpp"

namespace ellm::mpi {
namespace {

MPI_Comm to_c(int handle) { return MPI_Comm_f2c(handle); }

// Times one blocking call into the communicator's statistics (and the step's communication
// phase, util/phases.hpp), and tells the watchdog which collective this rank is blocked in
// (`what` names the MPI call).
class BlockedTimer {
 public:
  BlockedTimer(CollectiveStats& s, const char* what, int ranks) : s_(s), start_(MPI_Wtime()) {
    collective_begins(what, ranks);
  }
  ~BlockedTimer() {
    collective_ends();
    s_.seconds += MPI_Wtime() - start_;
  }

 private:
  CollectiveStats& s_;
  double start_;
  PhaseScope phase_{Phase::communication};
};

template <class T>
MPI_Datatype datatype();
template <>
MPI_Datatype datatype<float>() { return MPI_FLOAT; }
template <>
MPI_Datatype datatype<double>() { return MPI_DOUBLE; }

}  // namespace

Session::Session(int* argc, char*** argv) {
  int provided = 0;
  MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
}
Session::~Session() { MPI_Finalize(); }

Comm Comm::world() { return Comm(MPI_Comm_c2f(MPI_COMM_WORLD)); }

Comm::Comm(int fortran_handle, bool owned) : handle_(fortran_handle) {
  if (owned) {
    owner_ = std::shared_ptr<void>(nullptr, [h = fortran_handle](void*) {
      MPI_Comm c = to_c(h);
      MPI_Comm_free(&c);
    });
  }
  // Local queries only: constructing a Comm is never a collective (a rank can build one alone).
  MPI_Comm c = to_c(handle_);
  MPI_Comm_rank(c, &rank_);
  MPI_Comm_size(c, &size_);
}

Comm Comm::split_node() const {
  MPI_Comm node;
  MPI_Comm_split_type(to_c(handle_), MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node);
  return Comm(MPI_Comm_c2f(node), true);
}

Comm Comm::split(int color, int key) const {
  MPI_Comm part;
  MPI_Comm_split(to_c(handle_), color, key, &part);
  return Comm(MPI_Comm_c2f(part), true);
}

std::string Comm::host() const {
  char name[MPI_MAX_PROCESSOR_NAME];
  int len = 0;
  MPI_Get_processor_name(name, &len);
  return std::string(name, len);
}

void Comm::barrier() {
  BlockedTimer t(stats_, "MPI_Barrier", size_);
  MPI_Barrier(to_c(handle_));
}

void Comm::barrier_sleeping(double poll_seconds) {
  BlockedTimer t(stats_, "MPI_Ibarrier (a sleeping barrier)", size_);
  MPI_Request request;
  MPI_Ibarrier(to_c(handle_), &request);
  const timespec pause{0, long(poll_seconds * 1e9)};
  for (int done = 0; MPI_Test(&request, &done, MPI_STATUS_IGNORE), !done;) nanosleep(&pause, nullptr);
}

template <class T>
void Comm::allreduce_buckets(T* data, std::size_t n, std::size_t bucket_bytes, int op_handle) {
  const std::size_t per_bucket = std::max<std::size_t>(1, bucket_bytes / sizeof(T));
  for (std::size_t off = 0; off < n; off += per_bucket) {
    const std::size_t count = std::min(per_bucket, n - off);
    stats_.allreduce_bytes += double(count * sizeof(T));
    BlockedTimer t(stats_, "MPI_Allreduce", size_);
    MPI_Allreduce(MPI_IN_PLACE, data + off, int(count), datatype<T>(), MPI_Op_f2c(op_handle),
                  to_c(handle_));
  }
}

void Comm::reduce_or_to_root(std::uint32_t* data, std::size_t n, std::size_t bucket_bytes) {
  const std::size_t per_bucket = std::max<std::size_t>(1, bucket_bytes / sizeof(std::uint32_t));
  for (std::size_t off = 0; off < n; off += per_bucket) {
    const int count = int(std::min(per_bucket, n - off));
    BlockedTimer t(stats_, "MPI_Reduce", size_);
    MPI_Reduce(is_root() ? MPI_IN_PLACE : data + off, is_root() ? data + off : nullptr, count,
               MPI_UINT32_T, MPI_BOR, 0, to_c(handle_));
  }
}

void Comm::allreduce_sum(float* data, std::size_t n, std::size_t bucket_bytes) {
  allreduce_buckets(data, n, bucket_bytes, MPI_Op_c2f(MPI_SUM));
}
void Comm::allreduce_sum(double* data, std::size_t n, std::size_t bucket_bytes) {
  allreduce_buckets(data, n, bucket_bytes, MPI_Op_c2f(MPI_SUM));
}
void Comm::allreduce_max(float* data, std::size_t n) {
  allreduce_buckets(data, n, n * sizeof(float), MPI_Op_c2f(MPI_MAX));
}
void Comm::allreduce_max(double* data, std::size_t n) {
  allreduce_buckets(data, n, n * sizeof(double), MPI_Op_c2f(MPI_MAX));
}

void Comm::start_allreduce_sum(float* data, std::size_t n, Requests& pending) {
  // Starting is not free (Open MPI's libnbc builds the schedule and may move data right away):
  // it counts as time in MPI, like the waits.
  stats_.allreduce_bytes += double(n * sizeof(float));
  BlockedTimer t(stats_, "MPI_Iallreduce (start)", size_);
  MPI_Request request;
  MPI_Iallreduce(MPI_IN_PLACE, data, int(n), MPI_FLOAT, MPI_SUM, to_c(handle_), &request);
  pending.handles_.push_back(MPI_Request_c2f(request));
}

namespace {
// Runs an MPI_*all on the pending requests and writes their (possibly freed) handles back. The
// C handles go in a buffer kept across calls: a step's progress and wait calls allocate nothing.
template <class F>
void on_requests(std::vector<int>& handles, F call) {
  thread_local std::vector<MPI_Request> requests;
  requests.clear();
  for (int h : handles) requests.push_back(MPI_Request_f2c(h));
  call(int(requests.size()), requests.data());
  for (std::size_t i = 0; i < requests.size(); i++) handles[i] = MPI_Request_c2f(requests[i]);
}
}  // namespace

void Comm::progress(Requests& pending) {
  if (pending.empty()) return;
  BlockedTimer t(stats_, "MPI_Testall (pending MPI_Iallreduce)", size_);
  on_requests(pending.handles_, [](int n, MPI_Request* r) {
    int done = 0;
    MPI_Testall(n, r, &done, MPI_STATUSES_IGNORE);
  });
}

void Comm::wait(Requests& pending) {
  if (pending.empty()) return;
  BlockedTimer t(stats_, "MPI_Waitall (pending MPI_Iallreduce)", size_);
  on_requests(pending.handles_,
              [](int n, MPI_Request* r) { MPI_Waitall(n, r, MPI_STATUSES_IGNORE); });
  pending.handles_.clear();
}

void Comm::reduce_scatter_sum(const float* data, const std::vector<int>& offsets, float* mine) {
  std::vector<int> counts(size_);
  for (int r = 0; r < size_; r++) counts[r] = offsets[r + 1] - offsets[r];
  stats_.reduce_scatter_bytes += double(offsets[size_] - offsets[0]) * sizeof(float);
  BlockedTimer t(stats_, "MPI_Reduce_scatter", size_);
  MPI_Reduce_scatter(data, mine, counts.data(), MPI_FLOAT, MPI_SUM, to_c(handle_));
}

void Comm::allgather_in_place(float* data, const std::vector<int>& offsets) {
  std::vector<int> counts(size_), displs(size_);
  for (int r = 0; r < size_; r++) {
    counts[r] = offsets[r + 1] - offsets[r];
    displs[r] = offsets[r];
  }
  stats_.allgather_bytes += double(offsets[size_] - offsets[0]) * sizeof(float);
  BlockedTimer t(stats_, "MPI_Allgatherv", size_);
  MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, counts.data(), displs.data(),
                 MPI_FLOAT, to_c(handle_));
}

double Comm::allreduce_scalar(double value, int op_handle) {
  stats_.allreduce_bytes += sizeof value;
  BlockedTimer t(stats_, "MPI_Allreduce", size_);
  MPI_Allreduce(MPI_IN_PLACE, &value, 1, MPI_DOUBLE, MPI_Op_f2c(op_handle), to_c(handle_));
  return value;
}
double Comm::allreduce_sum(double value) { return allreduce_scalar(value, MPI_Op_c2f(MPI_SUM)); }
double Comm::allreduce_max(double value) { return allreduce_scalar(value, MPI_Op_c2f(MPI_MAX)); }
double Comm::allreduce_min(double value) { return allreduce_scalar(value, MPI_Op_c2f(MPI_MIN)); }

std::vector<std::string> Comm::gather_strings(const std::string& mine, std::size_t round_bytes) {
  BlockedTimer t(stats_, "MPI_Gather/MPI_Gatherv (gather_strings)", size_);
  // MPI counts and displacements are ints: 1,000 ranks' records of a few MB each would overflow
  // one MPI_Gatherv. Lengths travel as 64-bit, and the strings in rounds in which each rank sends
  // at most round_bytes ÷ ranks bytes, so no round's total or displacement exceeds round_bytes.
  const std::size_t per_rank = std::max<std::size_t>(1, std::min<std::size_t>(round_bytes, INT_MAX) / std::size_t(size_));
  std::uint64_t len = mine.size();
  std::vector<std::uint64_t> lens(is_root() ? size_ : 0);
  MPI_Gather(&len, 1, MPI_UINT64_T, lens.data(), 1, MPI_UINT64_T, 0, to_c(handle_));
  std::uint64_t longest = len;
  MPI_Allreduce(MPI_IN_PLACE, &longest, 1, MPI_UINT64_T, MPI_MAX, to_c(handle_));
  std::vector<std::string> out(is_root() ? size_ : 0);
  for (int r = 0; is_root() && r < size_; r++) out[r].resize(lens[r]);
  std::vector<int> counts(is_root() ? size_ : 0), displs(is_root() ? size_ : 0);
  std::string buffer;
  for (std::uint64_t first = 0; first < longest; first += per_rank) {
    const int mine_now = int(std::min<std::uint64_t>(per_rank, len > first ? len - first : 0));
    if (is_root()) {
      int total = 0;
      for (int r = 0; r < size_; r++) {
        counts[r] = int(std::min<std::uint64_t>(per_rank, lens[r] > first ? lens[r] - first : 0));
        displs[r] = total;
        total += counts[r];
      }
      buffer.resize(std::size_t(total));
    }
    MPI_Gatherv(mine.data() + std::min<std::uint64_t>(first, len), mine_now, MPI_CHAR, buffer.data(), counts.data(),
                displs.data(), MPI_CHAR, 0, to_c(handle_));
    for (int r = 0; is_root() && r < size_; r++) buffer.copy(out[r].data() + first, std::size_t(counts[r]), std::size_t(displs[r]));
  }
  return out;
}

std::string Comm::broadcast_string(const std::string& value) {
  BlockedTimer t(stats_, "MPI_Bcast (broadcast_string)", size_);
  int len = int(value.size());
  MPI_Bcast(&len, 1, MPI_INT, 0, to_c(handle_));
  std::string out = is_root() ? value : std::string(len, '\0');
  MPI_Bcast(out.data(), len, MPI_CHAR, 0, to_c(handle_));
  return out;
}

void Comm::alltoall(const int* send, int* recv, int n) {
  stats_.alltoall_bytes += double(n) * size_ * sizeof(int);
  BlockedTimer t(stats_, "MPI_Alltoall", size_);
  MPI_Alltoall(send, n, MPI_INT, recv, n, MPI_INT, to_c(handle_));
}

namespace {
// A side's row counts and displacements per rank. MPI counts are ints: counting in rows (of a
// contiguous row type) keeps them far from overflow whatever the routing, so no rank can fail
// here while the others wait in the collective.
void row_blocks(const std::vector<int>& rows, int ranks, const std::string& side,
                std::vector<int>& displs) {
  if (int(rows.size()) != ranks) {
    throw std::invalid_argument("alltoallv_rows: " + std::to_string(rows.size()) + " " + side +
                                " row counts for " + std::to_string(ranks) + " ranks");
  }
  std::int64_t offset = 0;
  for (int r = 0; r < ranks; r++) {
    if (rows[r] < 0) throw std::invalid_argument("alltoallv_rows: negative " + side + " row count");
    displs[r] = int(offset);
    offset += rows[r];
  }
  if (offset > std::numeric_limits<int>::max()) {
    throw std::runtime_error("alltoallv_rows: " + std::to_string(offset) + " rows to " + side +
                             " exceed MPI's int displacements");
  }
}
}  // namespace

void Comm::alltoallv_rows(const float* send, const std::vector<int>& send_rows, float* recv,
                          const std::vector<int>& recv_rows, int row_elems) {
  if (row_elems < 1) throw std::invalid_argument("alltoallv_rows: row_elems must be at least 1");
  std::vector<int> send_displs(size_), recv_displs(size_);
  row_blocks(send_rows, size_, "send", send_displs);
  row_blocks(recv_rows, size_, "receive", recv_displs);
  MPI_Datatype row;
  MPI_Type_contiguous(row_elems, MPI_FLOAT, &row);
  MPI_Type_commit(&row);
  for (int rows : send_rows) stats_.alltoall_bytes += double(rows) * row_elems * sizeof(float);
  {
    BlockedTimer t(stats_, "MPI_Alltoallv", size_);
    MPI_Alltoallv(send, send_rows.data(), send_displs.data(), row, recv, recv_rows.data(),
                  recv_displs.data(), row, to_c(handle_));
  }
  MPI_Type_free(&row);
}

void abort_all(const std::string& message, int exit_code) {
  // One write: mpirun forwards each write separately, and its abort banner lands between two of them.
  std::fwrite(message.data(), 1, message.size(), stderr);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::abort();  // MPI_Abort does not return; this satisfies [[noreturn]]
}

std::string library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(text, &len);
  std::string s(text, len);
  return s.substr(0, s.find_first_of("\n,"));
}

double wtime() { return MPI_Wtime(); }

}  // namespace ellm::mpi
