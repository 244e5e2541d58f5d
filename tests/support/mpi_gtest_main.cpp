// main() of the MPI unit tests (tests/mpi/*.cpp): GoogleTest inside an MPI session, with one
// rank printing.
#include <gtest/gtest.h>

#include "mpi/comm.hpp"

int main(int argc, char** argv) {
  ellm::mpi::Session session(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  if (ellm::mpi::Comm::world().rank() != 0) {
    delete ::testing::UnitTest::GetInstance()->listeners().Release(
        ::testing::UnitTest::GetInstance()->listeners().default_result_printer());
  }
  return RUN_ALL_TESTS();
}
