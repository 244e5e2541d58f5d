// Finite-difference gradient checks in double precision.
//
// A layer is wrapped as loss(x) = Σ out(x) ⊙ w for a fixed random w, so the analytic gradient
// comes from running the layer's backward with dout = w; a whole model uses its own loss.
//
// The error measure is relative, with a floor:
//     err = |numeric − analytic| / max(|numeric|, |analytic|, kGradientFloor)
// and every checked element must have err < kGradientTolerance = 1e-6. With kGradientFloor = 1e-3
// a gradient of any size must agree to 1e-6 of itself, and one below 1e-3 to an absolute 1e-9.
// (The old measure divided by max(1, |numeric|): absolute for |g| < 1, so a gradient of 1e-4 could
// be wrong by 1e-3 of itself and pass.)
//
// The floor is set by the noise of the numeric derivative, which does not shrink with the
// gradient. For a stencil of step h it has two parts: truncation, growing with h and the loss's
// higher derivatives, and rounding, about c·δL/h where δL is the rounding noise of one loss
// evaluation (~1e-14 for the NSA mixer's loss, Σ out ⊙ w over ~1000 softmax outputs: its
// compressed-key bias, whose true gradient is exactly 0, comes out at ±5e-11 here).
//   - The plain central difference (L(x+h) − L(x−h)) / 2h with h = 1e-5 is not accurate enough:
//     its truncation h²/6 · ∂³L reaches 1e-8 absolute, 1e-5 relative, on the whole models of
//     test_gradcheck (weights 5× the init: ∂³L ~ 10³), and a smaller h makes the rounding worse.
//     Scanning h showed the error falling as h² and the analytic gradients right.
//   - The sixth-order stencil used here, h = 3e-4: truncation h⁶/140 · ∂⁷L, rounding ≈ 1.8·δL/h
//     ≈ 1e-10. Largest err measured over every check in tests/ (ELLM_GRADCHECK_VERBOSE=1):
//     1e-8 on single layers, 2.4e-8 on whole models (truncation: wte with a window), 9e-8 on NSA
//     (rounding) — ≥ 10× below the tolerance, while a floor-level gradient (1e-3) wrong by a
//     relative 1e-3 gives err 1e-3, and any mistake in a term, sign, index or constant far more.
//     Every analytic gradient scaled by 1 + 3e-6 fails all 384 checks in tests/ but 7: the NSA
//     φ_k bias b2, whose gradient is exactly 0, and, in the NSA whole model, φ_k's position
//     embedding, whose gradients are all below 3e-4 (below the floor a 3e-6 error is < 1e-9).
//
// Which elements: a tensor is seen as a (rows, cols) matrix — rows the product of all leading
// dimensions, cols the last one, a 1-D tensor one row. Up to `budget` elements, every element is
// checked. Past it: element (k mod rows, k mod cols) for k = 0 … max(rows, cols) − 1, so that every
// row and every column is checked at least once, plus seeded random elements up to the budget (at
// least kExtraSamples). An even stride would line up with the row width and skip whole columns.
//
// ELLM_GRADCHECK_VERBOSE=1 prints every check's worst element.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "util/rng.hpp"

namespace ellm::testing {

inline constexpr double kGradientStep = 3e-4;
inline constexpr double kGradientTolerance = 1e-6;
inline constexpr double kGradientFloor = 1e-3;
inline constexpr std::size_t kGradientBudget = 400;
inline constexpr std::size_t kExtraSamples = 8;

inline std::vector<double> random_doubles(std::size_t n, std::uint64_t seed, double scale = 1.0) {
  Rng rng(seed);
  std::vector<double> v(n);
  for (double& x : v) x = rng.normal() * scale;
  return v;
}

inline double weighted_sum(const std::vector<double>& out, const std::vector<double>& w) {
  double s = 0;
  for (std::size_t i = 0; i < out.size(); i++) s += out[i] * w[i];
  return s;
}

// A tensor seen as a matrix: {rows, cols}, or a shape whose last dimension is cols.
struct MatrixShape {
  std::size_t rows = 1, cols = 0;
  template <class R, class C>
  MatrixShape(R r, C c) : rows(std::size_t(r)), cols(std::size_t(c)) {}
  MatrixShape(const std::vector<int>& shape) {  // NOLINT: implicit, so callers pass t.shape
    cols = shape.empty() ? 1 : std::size_t(shape.back());
    for (std::size_t d = 0; d + 1 < shape.size(); d++) rows *= std::size_t(shape[d]);
  }
  std::size_t size() const { return rows * cols; }
};

// The flat indices a check visits, in increasing order (see the header comment).
inline std::vector<std::size_t> gradient_sample(MatrixShape s, std::size_t budget,
                                                std::uint64_t seed = 1) {
  const std::size_t n = s.size();
  std::vector<std::size_t> all(n);
  for (std::size_t i = 0; i < n; i++) all[i] = i;
  if (n <= budget || s.rows == 0 || s.cols == 0) return all;
  std::set<std::size_t> chosen;
  for (std::size_t k = 0; k < std::max(s.rows, s.cols); k++)
    chosen.insert(k % s.rows * s.cols + k % s.cols);
  const std::size_t target = std::min(n, std::max(chosen.size() + kExtraSamples, budget));
  Rng rng(seed);
  while (chosen.size() < target) chosen.insert(rng.below(n));
  return {chosen.begin(), chosen.end()};
}

struct GradientReport {
  std::size_t checked = 0, failures = 0;  // failures: elements with err ≥ tol
  double worst = 0;                       // the largest err, at element `index`
  std::size_t index = 0;
  double analytic = 0, numeric = 0;
};

inline double gradient_error(double numeric, double analytic, double floor = kGradientFloor) {
  return std::fabs(numeric - analytic) / std::max({std::fabs(numeric), std::fabs(analytic), floor});
}

// d loss / d x[i] by the sixth-order central difference
//     (45 (L₁ − L₋₁) − 9 (L₂ − L₋₂) + (L₃ − L₋₃)) / 60h,   Lₖ = L(x + k·h·eᵢ).
inline double numeric_derivative(std::vector<double>& x, std::size_t i,
                                 const std::function<double()>& loss, double h = kGradientStep) {
  const double saved = x[i];
  const auto at = [&](double d) {
    x[i] = saved + d;
    return loss();
  };
  const double d1 = at(h) - at(-h), d2 = at(2 * h) - at(-2 * h), d3 = at(3 * h) - at(-3 * h);
  x[i] = saved;
  return (45 * d1 - 9 * d2 + d3) / (60 * h);
}

// Finite differences of `loss` around x against `analytic` (d loss / d x) on the sampled elements.
// `x` is perturbed in place and restored.
inline GradientReport check_gradient(std::vector<double>& x, const std::vector<double>& analytic,
                                     const std::function<double()>& loss, MatrixShape shape,
                                     std::size_t budget = kGradientBudget, double h = kGradientStep,
                                     double tol = kGradientTolerance) {
  GradientReport r;
  for (const std::size_t i : gradient_sample(shape, budget)) {
    const double numeric = numeric_derivative(x, i, loss, h),
                 err = gradient_error(numeric, analytic[i]);
    r.checked++;
    r.failures += err >= tol;
    if (err > r.worst || r.checked == 1) r = {r.checked, r.failures, err, i, analytic[i], numeric};
  }
  return r;
}

// The gtest wrapper: one non-fatal failure naming the worst element and how many failed.
inline void expect_gradient_matches(std::vector<double>& x, const std::vector<double>& analytic,
                                    const std::function<double()>& loss, const std::string& what,
                                    MatrixShape shape, std::size_t budget = kGradientBudget,
                                    double h = kGradientStep, double tol = kGradientTolerance) {
  ASSERT_EQ(x.size(), analytic.size()) << what;
  ASSERT_EQ(x.size(), shape.size()) << what << ": shape " << shape.rows << "×" << shape.cols;
  const GradientReport r = check_gradient(x, analytic, loss, shape, budget, h, tol);
  const auto at = [&] {
    std::ostringstream s;
    s.precision(10);
    s << what << "[" << r.index / std::max<std::size_t>(shape.cols, 1) << ", "
      << r.index % std::max<std::size_t>(shape.cols, 1) << "]: analytic " << r.analytic
      << " numeric " << r.numeric << ", error " << r.worst;
    return s.str();
  };
  if (std::getenv("ELLM_GRADCHECK_VERBOSE")) {
    std::printf("gradcheck %-28s %4zu×%-4zu checked %4zu worst %.1e at %s\n", what.c_str(),
                shape.rows, shape.cols, r.checked, r.worst, at().c_str());
  }
  EXPECT_GT(r.checked, 0u) << what;
  EXPECT_EQ(r.failures, 0u) << r.failures << " of " << r.checked << " elements off by ≥ " << tol
                            << "; worst " << at();
}

}  // namespace ellm::testing
