#include "layers/norm.hpp"

#include <algorithm>
#include <cstddef>
#include <cmath>

#include "kernels/vmath.hpp"
#include "util/phases.hpp"
#include "util/thread_pool.hpp"

namespace ellm::layers {
namespace {

// The rows of a norm are independent: forward and the input gradient run over rows on the
// rank's threads. The weight gradients sum over rows; they run over blocks of columns instead,
// each column summing its rows in order 0 … N−1 as a serial loop would, so every result is
// bit-identical for any thread count.
constexpr int kColumnBlock = 64;

template <class Fn>
void over_rows(int N, int C, Fn row) {
  parallel_items(N, std::int64_t(C) * 8, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t n = b; n < e; n++) row(int(n));
  });
}

// fn(c0, c1) over blocks of columns [0, C).
template <class Fn>
void over_column_blocks(int N, int C, Fn fn) {
  const int blocks = (C + kColumnBlock - 1) / kColumnBlock;
  parallel_items(blocks, std::int64_t(N) * kColumnBlock * 4, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t blk = b; blk < e; blk++) fn(int(blk) * kColumnBlock, std::min(C, int(blk + 1) * kColumnBlock));
  });
}

// dx (C) += s · (dy·w − g_mean − xhat · gx_mean), xhat = (x − m) · s: a function of its own, with
// every operand a local, so that the loop vectorises (inside the row lambda, a store to dx could
// have changed the captured pointers, and it stayed scalar).
template <class T>
void add_layernorm_input_grad(T* dx, const T* dy, const T* x, const T* w, T m, T s, T g_mean, T gx_mean, int C) {
  for (int c = 0; c < C; c++) dx[c] += s * (dy[c] * w[c] - g_mean - (x[c] - m) * s * gx_mean);
}

}  // namespace

template <class T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* inp, const T* w, const T* b, int N, int C,
                       double eps) {
  const PhaseScope phase(Phase::elementwise);
  over_rows(N, C, [&](int n) {
    const T* x = inp + size_t(n) * C;
    const double m = kernels::lane_sum(C, [x](size_t c) { return x[c]; }) / C;
    const double var = kernels::lane_sum(C, [x, m](size_t c) { return (x[c] - m) * (x[c] - m); });
    const double s = 1.0 / std::sqrt(var / C + eps);
    T* y = out + size_t(n) * C;
    for (int c = 0; c < C; c++) y[c] = T((x[c] - m) * s) * w[c] + b[c];
    mean[n] = T(m);
    rstd[n] = T(s);
  });
}

template <class T>
void layernorm_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w,
                        const T* mean, const T* rstd, int N, int C) {
  const PhaseScope phase(Phase::elementwise);
  over_rows(N, C, [&](int n) {
    const T* dy = dout + size_t(n) * C;
    const T* x = inp + size_t(n) * C;
    T* dx = dinp + size_t(n) * C;
    const T m = mean[n], s = rstd[n];
    // dx = s * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * w
    const T g_mean = T(kernels::lane_sum(C, [&](size_t c) { return dy[c] * w[c]; }) / C);
    const T gx_mean = T(kernels::lane_sum(C, [&](size_t c) { return dy[c] * w[c] * ((x[c] - m) * s); }) / C);
    add_layernorm_input_grad(dx, dy, x, w, m, s, g_mean, gx_mean, C);
  });
  if (!dw && !db) return;  // a frozen norm (fine-tuning): no weight gradients
  over_column_blocks(N, C, [&](int c0, int c1) {  // db = Σ_n dy, dw = Σ_n dy · xhat
    T* const dbl = db;
    T* const dwl = dw;
    for (int n = 0; n < N; n++) {
      const T* dy = dout + size_t(n) * C;
      const T* x = inp + size_t(n) * C;
      const T m = mean[n], s = rstd[n];
      if (dbl)
        for (int c = c0; c < c1; c++) dbl[c] += dy[c];
      if (dwl)
        for (int c = c0; c < c1; c++) dwl[c] += dy[c] * ((x[c] - m) * s);
    }
  });
}

template <class T>
void rmsnorm_forward(T* out, T* rstd, const T* inp, const T* w, int N, int C, double eps) {
  const PhaseScope phase(Phase::elementwise);
  over_rows(N, C, [&](int n) {
    const T* x = inp + size_t(n) * C;
    const double ss = kernels::lane_sum(C, [x](size_t c) { return double(x[c]) * x[c]; });
    const T s = T(1.0 / std::sqrt(ss / C + eps));
    T* y = out + size_t(n) * C;
    for (int c = 0; c < C; c++) y[c] = x[c] * s * w[c];
    rstd[n] = s;
  });
}

template <class T>
void rmsnorm_backward(T* dinp, T* dw, const T* dout, const T* inp, const T* w, const T* rstd, int N,
                      int C) {
  const PhaseScope phase(Phase::elementwise);
  over_rows(N, C, [&](int n) {
    const T* dy = dout + size_t(n) * C;
    const T* x = inp + size_t(n) * C;
    T* dx = dinp + size_t(n) * C;
    const T s = rstd[n];
    // dx = s * (g - xhat * mean(g * xhat)) with g = dy * w, xhat = x * s
    const T gx_mean = T(kernels::lane_sum(C, [&](size_t c) { return dy[c] * w[c] * x[c] * s; }) / C);
    add_layernorm_input_grad(dx, dy, x, w, T(0), s, T(0), gx_mean, C);  // RMSNorm: no mean
  });
  if (!dw) return;  // a frozen norm (fine-tuning): no weight gradient
  over_column_blocks(N, C, [&](int c0, int c1) {  // dw = Σ_n dy · xhat
    T* const dwl = dw;  // a local, as in layernorm_backward
    for (int n = 0; n < N; n++) {
      const T* dy = dout + size_t(n) * C;
      const T* x = inp + size_t(n) * C;
      const T s = rstd[n];
      for (int c = c0; c < c1; c++) dwl[c] += dy[c] * (x[c] * s);
    }
  });
}

#define ELLM_INSTANTIATE(T)                                                                  \
  template void layernorm_forward<T>(T*, T*, T*, const T*, const T*, const T*, int, int,     \
                                     double);                                                \
  template void layernorm_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*,    \
                                      const T*, int, int);                                   \
  template void rmsnorm_forward<T>(T*, T*, const T*, const T*, int, int, double);            \
  template void rmsnorm_backward<T>(T*, T*, const T*, const T*, const T*, const T*, int, int);
ELLM_INSTANTIATE(float)
ELLM_INSTANTIATE(double)
#undef ELLM_INSTANTIATE

}  // namespace ellm::layers
