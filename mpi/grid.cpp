#include "mpi/grid.hpp"

namespace ellm::mpi {

ProcessGrid make_grid(const Comm& world, int tp) {
  const int r = world.rank();
  return {world.split(/*color=*/r / tp, /*key=*/r), world.split(/*color=*/r % tp, /*key=*/r)};
}

}  // namespace ellm::mpi
