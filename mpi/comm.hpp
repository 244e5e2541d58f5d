// The only interface to MPI. Everything else in efficientllm talks to ranks through this header,
// which does not include <mpi.h>: communicators are held as Fortran handles (MPI_Comm_c2f).
//
// Every collective records the wall time the caller spent blocked in it, so the trainer can split
// a step into compute and communication without timing MPI itself.
#pragma once
#include <climits>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ellm::mpi {

// MPI_Init_thread / MPI_Finalize for the lifetime of main().
class Session {
 public:
  Session(int* argc, char*** argv);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
};

struct CollectiveStats {
  double seconds = 0.0;  // time in collectives: blocked in them, or starting non-blocking ones
  // Bytes handed to each kind of collective, one call's whole buffer each (the n of the scaling
  // predictor's cost model, src/predict/alpha_beta.hpp): the vector all-reduced (blocking or not),
  // the full buffer reduce-scattered or all-gathered, this rank's send buffer of an all-to-all.
  double allreduce_bytes = 0, reduce_scatter_bytes = 0, allgather_bytes = 0, alltoall_bytes = 0;
};

// Non-blocking collectives in flight (their MPI requests, held as Fortran handles).
class Requests {
 public:
  bool empty() const { return handles_.empty(); }

 private:
  friend class Comm;
  std::vector<int> handles_;
};

class Comm {
 public:
  static Comm world();
  // The ranks that share this node's memory (MPI_COMM_TYPE_SHARED), ordered by world rank: its
  // rank 0 is the node's lowest rank, the one that measures node-wide figures (peak, energy).
  Comm split_node() const;
  // The ranks with the same color, ordered by key (MPI_Comm_split); a collective call.
  Comm split(int color, int key) const;

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool is_root() const { return rank_ == 0; }
  std::string host() const;

  void barrier();
  // A barrier that waits by sleeping (polls every poll_seconds) instead of spinning: the ranks
  // waiting in it leave their cores to a measurement running on another rank.
  void barrier_sleeping(double poll_seconds = 1e-3);
  // In-place element-wise sum across ranks, one MPI_Allreduce per bucket of ≤ bucket_bytes:
  // large single messages are several times slower than ~1 MiB ones on shared memory.
  void allreduce_sum(float* data, std::size_t n, std::size_t bucket_bytes);
  void allreduce_sum(double* data, std::size_t n, std::size_t bucket_bytes);
  // Bitwise OR of every rank's words into the root's `data` (others' data unchanged), one
  // MPI_Reduce per bucket. Assembles whole tensors from shards exactly: each rank gives the bits
  // it holds and zeros elsewhere; copies held by several ranks are bit-identical, so OR keeps them.
  void reduce_or_to_root(std::uint32_t* data, std::size_t n, std::size_t bucket_bytes);
  // In-place element-wise maximum across ranks (one message: used for small row statistics).
  void allreduce_max(float* data, std::size_t n);
  void allreduce_max(double* data, std::size_t n);
  double allreduce_sum(double value);
  double allreduce_max(double value);
  double allreduce_min(double value);
  // Non-blocking in-place sum (MPI_Iallreduce) of data[0, n), added to `pending`; data must not
  // be touched until it completes. Starting costs no blocked time.
  void start_allreduce_sum(float* data, std::size_t n, Requests& pending);
  // Lets MPI progress the pending collectives (MPI_Testall); counted as blocked time.
  void progress(Requests& pending);
  // Waits for all of them (MPI_Waitall); counted as blocked time.
  void wait(Requests& pending);
  // Parts of one buffer, rank r's being data[offsets[r], offsets[r+1]) (offsets from data, so
  // the counts are ints however large the arena): rank r receives the sum over ranks of its part
  // into mine (MPI_Reduce_scatter); every rank's part is gathered in place into every rank's data
  // (MPI_Allgatherv).
  void reduce_scatter_sum(const float* data, const std::vector<int>& offsets, float* mine);
  void allgather_in_place(float* data, const std::vector<int>& offsets);
  // Every rank's string at the root (rank order); other ranks get an empty vector. Any lengths
  // (64-bit): the strings move in rounds of at most round_bytes in all (at least a byte per rank;
  // tests make it small).
  std::vector<std::string> gather_strings(const std::string& mine, std::size_t round_bytes = INT_MAX);
  std::string broadcast_string(const std::string& value);  // the root's value, everywhere
  // Every rank sends n ints to every rank (MPI_Alltoall): send[r·n, (r+1)·n) goes to rank r and
  // recv[r·n, (r+1)·n) comes from rank r. Expert parallelism exchanges per-expert token counts
  // with it, so each rank can size its receive before the rows themselves move.
  void alltoall(const int* send, int* recv, int n);
  // Rows of row_elems floats (MPI_Alltoallv): send_rows[r] rows go to rank r and recv_rows[r]
  // come from rank r, each side's blocks contiguous in rank order. Counts are in rows (of a
  // contiguous row type), so callers never compute displacements and the element totals of a
  // skewed routing cannot overflow MPI's int counts.
  void alltoallv_rows(const float* send, const std::vector<int>& send_rows, float* recv,
                      const std::vector<int>& recv_rows, int row_elems);


  const CollectiveStats& stats() const { return stats_; }

 private:
  explicit Comm(int fortran_handle, bool owned = false);
  template <class T>
  void allreduce_buckets(T* data, std::size_t n, std::size_t bucket_bytes, int op_handle);
  double allreduce_scalar(double value, int op_handle);

  int handle_;
  std::shared_ptr<void> owner_;  // frees a communicator this Comm created (not the world's)
  int rank_ = 0, size_ = 1;
  CollectiveStats stats_;
};

// Ends every rank of the job (MPI_Abort on MPI_COMM_WORLD). Needs no collective first, so a rank
// can call it while the others are blocked elsewhere. The message (a whole line, newline included)
// goes to stderr first.
[[noreturn]] void abort_all(const std::string& message, int exit_code);
std::string library_version();  // MPI_Get_library_version, first line
double wtime();                 // MPI_Wtime

}  // namespace ellm::mpi
