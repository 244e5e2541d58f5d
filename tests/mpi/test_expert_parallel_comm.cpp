// Expert parallelism's communication under mpiexec: Comm::alltoall and Comm::alltoallv_rows with
// skewed counts (every row to one rank, a rank that sends and receives nothing, nothing at all),
// the ExpertParallel<float> the trainer builds from a Comm, and the grid's ep and edp groups.
// Failures are counted with EXPECT, never ASSERTed before a collective: a rank that left early
// would leave the others waiting.
#include <gtest/gtest.h>

#include <functional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "mpi/comm.hpp"
#include "mpi/grid.hpp"
#include "train/expert_parallel_comm.hpp"

namespace ellm {
namespace {

using mpi::Comm;

TEST(Alltoall, BlockRComesFromRankR) {
  Comm world = Comm::world();
  const int me = world.rank(), size = world.size();
  for (int n : {0, 1, 3}) {
    std::vector<int> send, recv(size * n, -1);
    for (int dst = 0; dst < size; dst++) {
      for (int i = 0; i < n; i++) send.push_back(me * 100 + dst * 10 + i);
    }
    world.alltoall(send.data(), recv.data(), n);
    int wrong = 0;
    for (int src = 0; src < size; src++) {
      for (int i = 0; i < n; i++) wrong += recv[src * n + i] != src * 100 + me * 10 + i;
    }
    EXPECT_EQ(wrong, 0) << "n = " << n;
  }
  EXPECT_GT(world.stats().seconds, 0.0) << "not timed";
}

constexpr int kRowElems = 5;
// Row k of the block src sends to dst: every value names where it should land.
float value(int src, int dst, int k, int e) {
  return src * 100000.0f + dst * 1000.0f + k * 10.0f + e;
}

struct Pattern {
  std::string name;
  std::function<int(int src, int dst, int size)> rows;  // rows src sends to dst
};

void PrintTo(const Pattern& p, std::ostream* os) { *os << p.name; }

class AlltoallvRows : public ::testing::TestWithParam<Pattern> {};

TEST_P(AlltoallvRows, EveryBlockLandsInRankOrder) {
  Comm world = Comm::world();
  const int me = world.rank(), size = world.size();
  const auto& rows = GetParam().rows;
  std::vector<int> send_rows(size), recv_rows(size);
  std::vector<float> send;
  for (int dst = 0; dst < size; dst++) {
    send_rows[dst] = rows(me, dst, size);
    recv_rows[dst] = rows(dst, me, size);
    for (int k = 0; k < send_rows[dst]; k++) {
      for (int e = 0; e < kRowElems; e++) send.push_back(value(me, dst, k, e));
    }
  }
  std::vector<float> expected;
  for (int src = 0; src < size; src++) {
    for (int k = 0; k < recv_rows[src]; k++) {
      for (int e = 0; e < kRowElems; e++) expected.push_back(value(src, me, k, e));
    }
  }
  std::vector<float> recv(expected.size(), -1.0f);
  world.alltoallv_rows(send.data(), send_rows, recv.data(), recv_rows, kRowElems);
  EXPECT_EQ(recv, expected);
}

INSTANTIATE_TEST_SUITE_P(
    Skews, AlltoallvRows,
    ::testing::Values(
        Pattern{"spread", [](int src, int dst, int) { return (src + 2 * dst) % 3 + src; }},
        Pattern{"all_to_rank_0", [](int src, int dst, int) { return dst == 0 ? src + 2 : 0; }},
        Pattern{"last_rank_silent",
                [](int src, int dst, int size) {
                  return src == size - 1 || dst == size - 1 ? 0 : src + dst + 1;
                }},
        Pattern{"nothing", [](int, int, int) { return 0; }}),
    [](const ::testing::TestParamInfo<Pattern>& i) { return i.param.name; });

// Every rank sees the same counts, so every rank throws before MPI is called. (Element totals
// past 2^31 are fine: counts are in rows of a contiguous row type.)
TEST(AlltoallvRows, RefusesCountsMPICannotHold) {
  Comm world = Comm::world();
  const std::vector<int> huge(world.size(), 1 << 30), none(world.size(), 0);
  EXPECT_THROW(world.alltoallv_rows(nullptr, huge, nullptr, none, 1), std::runtime_error);
  EXPECT_THROW(world.alltoallv_rows(nullptr, none, nullptr, huge, 1), std::runtime_error);
  const std::vector<int> one_too_many(world.size() + 1, 0);
  EXPECT_THROW(world.alltoallv_rows(nullptr, one_too_many, nullptr, none, 1),
               std::invalid_argument);
  EXPECT_THROW(world.alltoallv_rows(nullptr, none, nullptr, none, 0), std::invalid_argument);
}

// The trainer's adapter: rows dispatched by their counts and combined back, times in the Comm.
TEST(ExpertParallelComm, DispatchAndCombineRoundTrip) {
  Comm world = Comm::world();
  ExpertParallel<float> ep = expert_parallel(world);
  EXPECT_EQ(ep.rank, world.rank());
  EXPECT_EQ(ep.size, world.size());
  std::vector<int> send_rows(ep.size), recv_rows(ep.size);
  for (int dst = 0; dst < ep.size; dst++) send_rows[dst] = (ep.rank + dst) % 2 + (dst == 0);
  ep.exchange_counts(send_rows.data(), recv_rows.data(), 1);
  int sent = 0, received = 0;
  for (int r = 0; r < ep.size; r++) {
    EXPECT_EQ(recv_rows[r], (r + ep.rank) % 2 + (ep.rank == 0)) << "count from rank " << r;
    sent += send_rows[r];
    received += recv_rows[r];
  }
  std::vector<float> send(sent * kRowElems), recv(received * kRowElems), back(send.size());
  for (std::size_t i = 0; i < send.size(); i++) send[i] = float(ep.rank * 1000 + int(i));
  const double blocked = world.stats().seconds;
  ep.exchange_rows(send.data(), send_rows, recv.data(), recv_rows, kRowElems);
  ep.exchange_rows(recv.data(), recv_rows, back.data(), send_rows, kRowElems);
  EXPECT_GT(world.stats().seconds, blocked) << "not timed";
  EXPECT_EQ(back, send);
}

// A grid layout and its groups, each listed in its ranks' order (world ranks).
using Groups = std::vector<std::vector<int>>;
struct Layout {
  int world, tp, ep;
  Groups tp_groups, dp_groups, ep_groups, edp_groups;
};

// The comm rank of each world rank in `comm` (−1 outside it), from one sum over the comm.
std::vector<int> placement(Comm& comm, const Comm& world) {
  std::vector<double> slot(world.size(), 0.0);
  slot[world.rank()] = comm.rank() + 1;
  comm.allreduce_sum(slot.data(), slot.size(), 1 << 20);
  std::vector<int> out;
  for (double s : slot) out.push_back(int(s) - 1);
  return out;
}

std::vector<int> expected_placement(const Groups& groups, int me, int world_size) {
  std::vector<int> out(world_size, -1);
  for (const std::vector<int>& g : groups) {
    bool mine = false;
    for (int w : g) mine |= w == me;
    for (int i = 0; mine && i < int(g.size()); i++) out[g[i]] = i;
  }
  return out;
}

TEST(Grid, ExpertGroupsAreRunsOfDataParallelRanksAndTheirStrides) {
  const std::vector<Layout> layouts = {
      {2, 1, 2, {{0}, {1}}, {{0, 1}}, {{0, 1}}, {{0}, {1}}},
      {3, 1, 3, {{0}, {1}, {2}}, {{0, 1, 2}}, {{0, 1, 2}}, {{0}, {1}, {2}}},
      {4, 1, 2, {{0}, {1}, {2}, {3}}, {{0, 1, 2, 3}}, {{0, 1}, {2, 3}}, {{0, 2}, {1, 3}}},
      {4, 1, 4, {{0}, {1}, {2}, {3}}, {{0, 1, 2, 3}}, {{0, 1, 2, 3}}, {{0}, {1}, {2}, {3}}},
      {4, 2, 2, {{0, 1}, {2, 3}}, {{0, 2}, {1, 3}}, {{0, 2}, {1, 3}}, {{0}, {1}, {2}, {3}}},
  };
  Comm world = Comm::world();
  const int me = world.rank(), n = world.size();
  int checked = 0;
  for (const Layout& l : layouts) {
    if (l.world != n) continue;
    checked++;
    mpi::ProcessGrid grid = mpi::make_grid(world, l.tp, l.ep);
    const std::string at = "tp " + std::to_string(l.tp) + " ep " + std::to_string(l.ep);
    EXPECT_EQ(placement(grid.tp, world), expected_placement(l.tp_groups, me, n)) << at;
    EXPECT_EQ(placement(grid.dp, world), expected_placement(l.dp_groups, me, n)) << at;
    EXPECT_EQ(placement(grid.ep, world), expected_placement(l.ep_groups, me, n)) << at;
    EXPECT_EQ(placement(grid.edp, world), expected_placement(l.edp_groups, me, n)) << at;
  }
  EXPECT_GT(checked, 0) << "no layout for " << n << " ranks";
}

// ep = 1 (the default): a one-rank ep group, and edp is dp.
TEST(Grid, WithoutExpertParallelismEdpIsDp) {
  Comm world = Comm::world();
  for (int tp = 1; tp <= world.size(); tp++) {
    if (world.size() % tp != 0) continue;
    mpi::ProcessGrid grid = mpi::make_grid(world, tp);
    EXPECT_EQ(grid.ep.size(), 1) << "tp " << tp;
    EXPECT_EQ(placement(grid.edp, world), placement(grid.dp, world)) << "tp " << tp;
  }
}

TEST(Grid, RefusesAnEpThatDoesNotDivideDp) {
  Comm world = Comm::world();
  EXPECT_THROW(mpi::make_grid(world, 1, world.size() + 1), std::invalid_argument);
  EXPECT_THROW(mpi::make_grid(world, 1, 0), std::invalid_argument);
}

}  // namespace
}  // namespace ellm
