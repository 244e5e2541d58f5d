// Expert parallelism among `size` threads of this process, for tests of the model without MPI.
// Each exchange publishes the rank's send buffer, waits, copies its blocks from every rank in the
// layout of MPI_Alltoall(v), and waits again (so no send buffer is released before everyone has
// read it).
#pragma once
#include <algorithm>
#include <barrier>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/expert_parallel.hpp"

namespace ellm::testing {

class ThreadExpertGroup {
 public:
  explicit ThreadExpertGroup(int size) : size_(size), counts_(size), rows_(size), sync_(size) {}

  ExpertParallel<double> member(int rank) {
    ExpertParallel<double> ep;
    ep.rank = rank;
    ep.size = size_;
    ep.exchange_counts = [this, rank](const int* send, int* recv, int n) {
      exchange_counts(rank, send, recv, n);
    };
    ep.exchange_rows = [this, rank](const double* send, const std::vector<int>& send_rows,
                                    double* recv, const std::vector<int>& recv_rows,
                                    int row_elems) {
      exchange_rows(rank, {send, &send_rows}, recv, recv_rows, row_elems);
    };
    return ep;
  }

 private:
  struct Rows {
    const double* data;
    const std::vector<int>* rows;  // per destination rank
  };

  void exchange_counts(int rank, const int* send, int* recv, int n) {
    counts_[rank] = send;
    sync_.arrive_and_wait();
    for (int s = 0; s < size_; s++) {
      std::copy_n(counts_[s] + std::size_t(rank) * n, n, recv + std::size_t(s) * n);
    }
    sync_.arrive_and_wait();
  }

  // Counts that do not match their sender's are an MPI error (truncation) or undefined; here the
  // receiver throws, after the last wait so that no other thread is left blocked.
  void exchange_rows(int rank, Rows mine, double* recv, const std::vector<int>& recv_rows,
                     int row_elems) {
    rows_[rank] = mine;
    sync_.arrive_and_wait();
    std::string error = check(rank, recv_rows);
    for (int s = 0, at = 0; error.empty() && s < size_; s++) {
      const std::vector<int>& sent = *rows_[s].rows;
      int from = 0;  // s's block for this rank follows its blocks for the lower ranks
      for (int q = 0; q < rank; q++) from += sent[q];
      std::copy_n(rows_[s].data + std::size_t(from) * row_elems,
                  std::size_t(sent[rank]) * row_elems, recv + std::size_t(at) * row_elems);
      at += sent[rank];
    }
    sync_.arrive_and_wait();
    if (!error.empty()) throw std::invalid_argument("exchange_rows: " + error);
  }

  std::string check(int rank, const std::vector<int>& recv_rows) const {
    if (int(recv_rows.size()) != size_) {
      return "rank " + std::to_string(rank) + ": receive counts for the wrong number of ranks";
    }
    for (int s = 0; s < size_; s++) {
      if (int(rows_[s].rows->size()) != size_) {
        return "rank " + std::to_string(s) + ": send counts for the wrong number of ranks";
      }
      if ((*rows_[s].rows)[rank] != recv_rows[s]) {
        return "rank " + std::to_string(rank) + " expects " + std::to_string(recv_rows[s]) +
               " rows from rank " + std::to_string(s) + ", which sends " +
               std::to_string((*rows_[s].rows)[rank]);
      }
    }
    return "";
  }

  int size_;
  std::vector<const int*> counts_;
  std::vector<Rows> rows_;
  std::barrier<> sync_;
};

}  // namespace ellm::testing
