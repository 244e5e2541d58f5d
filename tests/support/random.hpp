// Random test data (never zeros): N(0, scale²) floats from the suite's own generator, the same on
// every compiler.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "util/rng.hpp"

namespace ellm::testing {

inline std::vector<float> random_vector(std::size_t n, std::uint64_t seed, double scale = 1.0) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = float(rng.normal() * scale);
  return v;
}

}  // namespace ellm::testing
