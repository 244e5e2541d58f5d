#include "mpi/grid.hpp"

#include <stdexcept>
#include <string>

namespace ellm::mpi {

ProcessGrid make_grid(const Comm& world, int tp, int ep) {
  const int dp = world.size() / tp;
  // Every rank sees the same sizes, so every rank throws before any split (none is left waiting).
  if (ep < 1 || dp % ep != 0) {
    throw std::invalid_argument("expert parallelism: ep = " + std::to_string(ep) +
                                " does not divide dp = " + std::to_string(dp));
  }
  const int r = world.rank(), t = r % tp, d = r / tp;
  return {world.split(/*color=*/d, /*key=*/r), world.split(/*color=*/t, /*key=*/r),
          world.split(/*color=*/(d / ep) * tp + t, /*key=*/r),
          world.split(/*color=*/(d % ep) * tp + t, /*key=*/r)};
}

}  // namespace ellm::mpi
