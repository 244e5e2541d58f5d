#include "layers/linear.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/gemm.hpp"
#include "util/phases.hpp"
#include "util/thread_pool.hpp"

namespace ellm::layers {
using kernels::gemm;

namespace {

constexpr int kColumnBlock = 64;

// db (OC) += Σₙ dout (N,OC) over blocks of columns on the rank's threads, each column summing its
// rows in order 0 … N−1 as a serial loop would: bit-identical for any thread count.
template <class T>
void bias_backward(T* db, const T* dout, int N, int OC) {
  const PhaseScope phase(Phase::elementwise);
  const int blocks = (OC + kColumnBlock - 1) / kColumnBlock;
  parallel_items(blocks, std::int64_t(N) * kColumnBlock, [&](std::int64_t b, std::int64_t e) {
    const int o0 = int(b) * kColumnBlock, o1 = std::min(OC, int(e) * kColumnBlock);
    for (int n = 0; n < N; n++) {
      const T* row = dout + size_t(n) * OC;
      for (int o = o0; o < o1; o++) db[o] += row[o];
    }
  });
}

// dinp (N,C) = beta·dinp + dout (N,OC) · W (OC,C); dW, db accumulate.
template <class T>
void backward(T* dinp, T beta, T* dW, T* db, const T* dout, const T* inp, const T* W, int N, int C,
              int OC) {
  if (dinp) gemm<T>(false, false, N, C, OC, T(1), dout, OC, W, C, beta, dinp, C);
  if (dW) gemm<T>(true, false, OC, C, N, T(1), dout, OC, inp, C, T(1), dW, C);
  if (db) bias_backward(db, dout, N, OC);
}

}  // namespace

template <class T>
void linear_forward(T* out, const T* inp, const T* W, const T* b, int N, int C, int OC) {
  T beta = T(0);
  if (b) {  // seed every row with the bias so the GEMM adds onto it
    const PhaseScope phase(Phase::elementwise);
    parallel_items(N, OC, [&](std::int64_t n0, std::int64_t n1) {
      for (std::int64_t n = n0; n < n1; n++) std::copy(b, b + OC, out + size_t(n) * OC);
    });
    beta = T(1);
  }
  gemm<T>(false, true, N, OC, C, T(1), inp, C, W, C, beta, out, OC);
}

template <class T>
void linear_backward(T* dinp, T* dW, T* db, const T* dout, const T* inp, const T* W, int N, int C,
                     int OC) {
  backward(dinp, T(0), dW, db, dout, inp, W, N, C, OC);
}

template <class T>
void linear_backward_accumulate(T* dinp, T* dW, T* db, const T* dout, const T* inp, const T* W,
                                int N, int C, int OC) {
  backward(dinp, T(1), dW, db, dout, inp, W, N, C, OC);  // the GEMM adds onto dinp
}

#define ELLM_INSTANTIATE(T)                                                                      \
  template void linear_forward<T>(T*, const T*, const T*, const T*, int, int, int);              \
  template void linear_backward<T>(T*, T*, T*, const T*, const T*, const T*, int, int, int);     \
  template void linear_backward_accumulate<T>(T*, T*, T*, const T*, const T*, const T*, int, int, \
                                              int);
ELLM_INSTANTIATE(float)
ELLM_INSTANTIATE(double)
#undef ELLM_INSTANTIATE

}  // namespace ellm::layers
