// The in-process expert-parallel group (tests/support/thread_expert_group.hpp) that model tests
// use in place of MPI: a MoE-style dispatch and combine round trip recovers every rank's rows,
// for even and skewed routings, and mismatched counts are reported, not read past.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/thread_expert_group.hpp"

namespace ellm {
namespace {

constexpr int kExpertsPerRank = 2, kRowElems = 3;

// How many tokens a rank holds, and which expert each goes to (expert e lives on rank e / 2).
struct Routing {
  std::function<int(int rank, int size)> tokens;
  std::function<int(int rank, int token, int size)> expert;
};

// A token's row: its source rank, index and element, so any row out of place shows.
double value(int rank, int token, int e) { return rank * 1000.0 + token * 10.0 + e; }

// Runs `size` threads; each checks its own dispatch, then its combine; returns the failures.
std::vector<std::string> round_trip(int size, const Routing& routing) {
  testing::ThreadExpertGroup group(size);
  std::vector<std::string> failures(size);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < size; rank++) {
    threads.emplace_back([&, rank] {
      ExpertParallel<double> ep = group.member(rank);
      const int n = routing.tokens(rank, size), experts = size * kExpertsPerRank;
      // Dispatch: rows sorted by expert (stably), so each rank's rows are one block.
      std::vector<int> order(n), counts(experts, 0), send_rows(size, 0);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
        return routing.expert(rank, a, size) < routing.expert(rank, b, size);
      });
      std::vector<double> send;
      for (int t : order) {
        const int e = routing.expert(rank, t, size);
        counts[e]++;
        send_rows[e / kExpertsPerRank]++;
        for (int k = 0; k < kRowElems; k++) send.push_back(value(rank, t, k));
      }
      std::vector<int> recv_counts(experts);
      ep.exchange_counts(counts.data(), recv_counts.data(), kExpertsPerRank);
      std::vector<int> recv_rows(size, 0);
      for (int s = 0; s < size; s++) {
        recv_rows[s] = recv_counts[s * kExpertsPerRank] + recv_counts[s * kExpertsPerRank + 1];
      }
      // Expected: from each source in rank order, its tokens for my experts, by expert then token.
      std::vector<double> expected;
      for (int s = 0; s < size; s++) {
        for (int local = 0; local < kExpertsPerRank; local++) {
          for (int t = 0; t < routing.tokens(s, size); t++) {
            if (routing.expert(s, t, size) != rank * kExpertsPerRank + local) continue;
            for (int k = 0; k < kRowElems; k++) expected.push_back(value(s, t, k));
          }
        }
      }
      std::vector<double> recv(expected.size(), -1.0);
      ep.exchange_rows(send.data(), send_rows, recv.data(), recv_rows, kRowElems);
      if (recv != expected) failures[rank] += "dispatch delivered the wrong rows; ";
      // Combine: the rows go back with the counts swapped, and the sort is undone.
      std::vector<double> back(send.size(), -1.0), restored(send.size());
      ep.exchange_rows(recv.data(), recv_rows, back.data(), send_rows, kRowElems);
      for (int i = 0; i < n; i++) {
        std::copy_n(back.begin() + i * kRowElems, kRowElems,
                    restored.begin() + order[i] * kRowElems);
      }
      for (int t = 0; t < n; t++) {
        for (int k = 0; k < kRowElems; k++) {
          if (restored[t * kRowElems + k] != value(rank, t, k)) {
            failures[rank] += "combine lost token " + std::to_string(t) + "; ";
            break;
          }
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  return failures;
}

void expect_round_trip(const Routing& routing, int min_size = 1) {
  for (int size = min_size; size <= 4; size++) {
    const std::vector<std::string> failures = round_trip(size, routing);
    for (int r = 0; r < size; r++) EXPECT_EQ(failures[r], "") << size << " ranks, rank " << r;
  }
}

TEST(ThreadExpertGroup, RoundTripSpreadRouting) {
  expect_round_trip(
      {[](int rank, int) { return 7 + 3 * rank; },
       [](int rank, int t, int size) { return (5 * t + rank) % (size * kExpertsPerRank); }});
}

TEST(ThreadExpertGroup, RoundTripEveryTokenToOneExpert) {
  expect_round_trip({[](int rank, int) { return 4 + rank; }, [](int, int, int) { return 0; }});
}

TEST(ThreadExpertGroup, RoundTripEveryTokenToItsOwnRank) {
  expect_round_trip(
      {[](int rank, int) { return 5 - rank; },
       [](int rank, int t, int) { return rank * kExpertsPerRank + t % kExpertsPerRank; }});
}

// Rank 1 holds no tokens and no token goes to its experts: it sends and receives nothing.
TEST(ThreadExpertGroup, RoundTripWithARankThatSendsAndReceivesNothing) {
  expect_round_trip({[](int rank, int) { return rank == 1 ? 0 : 6; },
                     [](int rank, int t, int size) {
                       int dest = (t + rank) % (size - 1);
                       dest += dest >= 1;
                       return dest * kExpertsPerRank + t % kExpertsPerRank;
                     }},
                    /*min_size=*/2);
}

TEST(ThreadExpertGroup, RoundTripWithNoTokensAnywhere) {
  expect_round_trip({[](int, int) { return 0; }, [](int, int, int) { return 0; }});
}

TEST(ThreadExpertGroup, MismatchedCountsThrowOnTheReceiverOnly) {
  testing::ThreadExpertGroup group(2);
  std::vector<int> threw(2, 0);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < 2; rank++) {
    threads.emplace_back([&, rank] {
      ExpertParallel<double> ep = group.member(rank);
      const std::vector<double> send(kRowElems, 1.0);
      std::vector<double> recv(2 * kRowElems);
      // Rank 0 sends one row to rank 1, which expects two.
      const std::vector<int> send_rows =
          rank == 0 ? std::vector<int>{0, 1} : std::vector<int>{0, 0};
      const std::vector<int> recv_rows =
          rank == 1 ? std::vector<int>{2, 0} : std::vector<int>{0, 0};
      try {
        ep.exchange_rows(send.data(), send_rows, recv.data(), recv_rows, kRowElems);
      } catch (const std::invalid_argument&) {
        threw[rank] = 1;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(threw, (std::vector<int>{0, 1}));
}

}  // namespace
}  // namespace ellm
