// Finite-difference gradient checks in double precision.
//
// A layer is wrapped as loss(x) = Σ out(x) ⊙ w for a fixed random w, so the analytic gradient
// comes from running the layer's backward with dout = w. Central differences with step h give
// errors of O(h²) ≈ 1e-10 in double, so a relative tolerance of 1e-6 can only pass if the
// backward is right.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "util/rng.hpp"

namespace ellm::testing {

inline std::vector<double> random_doubles(std::size_t n, std::uint64_t seed, double scale = 1.0) {
  Rng rng(seed);
  std::vector<double> v(n);
  for (double& x : v) x = rng.normal() * scale;
  return v;
}

// Compares `analytic` (d loss / d x) with central differences of `loss` around x, over every
// element of x (or `max_checks` evenly spaced ones). `x` is perturbed in place and restored.
inline void expect_gradient_matches(std::vector<double>& x, const std::vector<double>& analytic,
                                    const std::function<double()>& loss, const char* what,
                                    std::size_t max_checks = 400, double h = 1e-5, double tol = 1e-6) {
  ASSERT_EQ(x.size(), analytic.size()) << what;
  const std::size_t stride = std::max<std::size_t>(1, x.size() / max_checks);
  double worst = 0.0;
  for (std::size_t i = 0; i < x.size(); i += stride) {
    const double saved = x[i];
    x[i] = saved + h;
    const double up = loss();
    x[i] = saved - h;
    const double down = loss();
    x[i] = saved;
    const double numeric = (up - down) / (2 * h);
    const double err = std::fabs(numeric - analytic[i]) / std::max(1.0, std::fabs(numeric));
    worst = std::max(worst, err);
    ASSERT_LT(err, tol) << what << "[" << i << "]: analytic " << analytic[i] << " numeric " << numeric;
  }
  EXPECT_LT(worst, tol) << what;
}

inline double weighted_sum(const std::vector<double>& out, const std::vector<double>& w) {
  double s = 0;
  for (std::size_t i = 0; i < out.size(); i++) s += out[i] * w[i];
  return s;
}

}  // namespace ellm::testing
