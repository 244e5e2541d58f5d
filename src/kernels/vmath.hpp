// Vectorisable elementwise math. libm's expf is a call GCC will not vectorise without -ffast-math,
// and it would cost ~0.5 s per training step of the reference model in attention and GELU alone.
// exp_fast is branch-free (clamp, round, polynomial, exponent bits), so loops over it auto-vectorise.
// The double overloads are the reference path (gradient checks) and simply call libm.
#pragma once
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace ellm::kernels {

// exp(x) for float: Cody–Waite range reduction x = n·ln2 + r, |r| ≤ ln2/2, and the Cephes expf
// minimax polynomial for e^r; within 2 ulp of libm over [-87, 88] (tested in tests/test_kernels.cpp).
inline float exp_fast(float x) {
  x = std::clamp(x, -87.0f, 88.0f);                // keeps 2^n a normal float
  const float kRound = 12582912.0f;                // 1.5·2^23: adding it rounds to an integer
  const float n = (x * 1.44269504088896341f + kRound) - kRound;
  const float r = x - n * 0.693359375f - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * r * r + r + 1.0f;
  const std::int32_t bits = (std::int32_t(n) + 127) << 23;
  return er * std::bit_cast<float>(bits);
}

inline float vexp(float x) { return exp_fast(x); }
inline double vexp(double x) { return std::exp(x); }

// tanh(x) = 1 - 2 / (1 + e^{2x}): saturates cleanly at ±1 because exp_fast clamps its argument.
inline float vtanh(float x) { return 1.0f - 2.0f / (1.0f + exp_fast(2.0f * x)); }
inline double vtanh(double x) { return std::tanh(x); }

// Σ term(i) for i in [0, n), in kSumLanes partial sums of double (term i goes to lane i % kSumLanes;
// the lanes are added in order at the end). One running sum is a chain of dependent adds that
// no compiler may reorder; fixed lanes vectorise, and the result depends on n alone, not on the
// CPU's vector width or the thread count.
inline constexpr int kSumLanes = 8;
template <class Term>
double lane_sum(std::size_t n, Term term) {
  double lane[kSumLanes] = {};
  std::size_t i = 0;
  for (; i + kSumLanes <= n; i += kSumLanes)
    for (int j = 0; j < kSumLanes; j++) lane[j] += double(term(i + j));
  for (int j = 0; i < n; i++, j++) lane[j] += double(term(i));
  double sum = 0.0;
  for (double x : lane) sum += x;
  return sum;
}

}  // namespace ellm::kernels
