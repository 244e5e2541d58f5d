#include "layers/linear.hpp"

#include <algorithm>
#include <cstddef>

#include "kernels/gemm.hpp"

namespace ellm::layers {
using kernels::gemm;

template <class T>
void linear_forward(T* out, const T* inp, const T* W, const T* b, int N, int C, int OC) {
  T beta = T(0);
  if (b) {  // seed every row with the bias so the GEMM adds onto it
    for (int n = 0; n < N; n++) std::copy(b, b + OC, out + size_t(n) * OC);
    beta = T(1);
  }
  gemm<T>(false, true, N, OC, C, T(1), inp, C, W, C, beta, out, OC);
}

template <class T>
void linear_backward(T* dinp, T* dW, T* db, const T* dout, const T* inp, const T* W, int N, int C,
                     int OC) {
  if (dinp) gemm<T>(false, false, N, C, OC, T(1), dout, OC, W, C, T(0), dinp, C);
  if (dW) gemm<T>(true, false, OC, C, N, T(1), dout, OC, inp, C, T(1), dW, C);
  if (db) {
    for (int n = 0; n < N; n++) {
      const T* row = dout + size_t(n) * OC;
      for (int o = 0; o < OC; o++) db[o] += row[o];
    }
  }
}

template <class T>
void linear_backward_accumulate(T* dinp, T* tmp, T* dW, T* db, const T* dout, const T* inp,
                                const T* W, int N, int C, int OC) {
  linear_backward(tmp, dW, db, dout, inp, W, N, C, OC);
  for (std::size_t i = 0; i < std::size_t(N) * C; i++) dinp[i] += tmp[i];
}

#define ELLM_INSTANTIATE(T)                                                                      \
  template void linear_forward<T>(T*, const T*, const T*, const T*, int, int, int);              \
  template void linear_backward<T>(T*, T*, T*, const T*, const T*, const T*, int, int, int);     \
  template void linear_backward_accumulate<T>(T*, T*, T*, T*, const T*, const T*, const T*, int, \
                                              int, int);
ELLM_INSTANTIATE(float)
ELLM_INSTANTIATE(double)
#undef ELLM_INSTANTIATE

}  // namespace ellm::layers
