// gather_strings under mpiexec: every rank's string reaches the root intact whatever the lengths
// (empty, one byte, many rounds), with rounds forced tiny so that the chunking that keeps MPI's
// int counts from overflowing at 1,000 ranks × MB records is exercised with small strings.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mpi/comm.hpp"

namespace ellm {
namespace {

std::string payload(int rank, std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; i++) s[i] = char((rank * 131 + i * 7) % 251);  // every byte value but a few
  return s;
}

TEST(GatherStrings, AnyLengthsAnyRoundSize) {
  mpi::Comm world = mpi::Comm::world();
  const int me = world.rank();
  for (const std::size_t round : {std::size_t(1), std::size_t(7), std::size_t(64), std::size_t(INT_MAX)}) {
    for (const std::size_t base : {std::size_t(0), std::size_t(1), std::size_t(1000)}) {
      const std::size_t n = base == 0 ? 0 : base + std::size_t(me) * 13;  // unequal lengths
      const std::vector<std::string> all = world.gather_strings(payload(me, n), round);
      if (me != 0) {
        EXPECT_TRUE(all.empty());
        continue;
      }
      ASSERT_EQ(int(all.size()), world.size());
      for (int r = 0; r < world.size(); r++) {
        EXPECT_EQ(all[r], payload(r, base == 0 ? 0 : base + std::size_t(r) * 13)) << "round " << round << " rank " << r;
      }
    }
  }
}

}  // namespace
}  // namespace ellm
