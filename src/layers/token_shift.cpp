#include "layers/token_shift.hpp"

#include <algorithm>
#include <cstddef>

namespace ellm::layers {

template <class T>
void token_shift_forward(T* xx, const T* x, int B, int Tn, int C) {
  for (int b = 0; b < B; b++) {
    for (int t = 0; t < Tn; t++) {
      const std::size_t row = (std::size_t(b) * Tn + t) * C;
      for (int c = 0; c < C; c++) xx[row + c] = (t > 0 ? x[row - C + c] : T(0)) - x[row + c];
    }
  }
}

template <class T>
void token_shift_backward(T* dx, const T* dxx, int B, int Tn, int C) {
  for (int b = 0; b < B; b++) {
    for (int t = 0; t < Tn; t++) {
      const std::size_t row = (std::size_t(b) * Tn + t) * C;
      for (int c = 0; c < C; c++) {
        dx[row + c] -= dxx[row + c];
        if (t > 0) dx[row - C + c] += dxx[row + c];
      }
    }
  }
}

template <class T>
void lerp_forward(T* out, const T* x, const T* xx, const T* mu, const T* m, int N, int C) {
  for (int n = 0; n < N; n++) {
    const std::size_t row = std::size_t(n) * C;
    for (int c = 0; c < C; c++) out[row + c] = x[row + c] + xx[row + c] * (mu[c] + (m ? m[row + c] : T(0)));
  }
}

template <class T>
void lerp_backward(T* dx, T* dxx, T* dmu, T* dm, const T* dout, const T* xx, const T* mu,
                   const T* m, int N, int C) {
  for (int n = 0; n < N; n++) {
    const std::size_t row = std::size_t(n) * C;
    for (int c = 0; c < C; c++) {
      const T g = dout[row + c];
      dx[row + c] += g;
      dxx[row + c] += g * (mu[c] + (m ? m[row + c] : T(0)));
      dmu[c] += g * xx[row + c];
      if (dm) dm[row + c] = g * xx[row + c];
    }
  }
}

template <class T>
void token_shift_continue(T* xx, T* last, const T* x, int B, int Tn, int C) {
  for (int b = 0; b < B; b++) {
    T* first = xx + std::size_t(b) * Tn * C;  // (C) was 0 − x_0
    T* prev = last + std::size_t(b) * C;
    for (int c = 0; c < C; c++) first[c] += prev[c];
    std::copy_n(x + (std::size_t(b) * Tn + Tn - 1) * C, C, prev);
  }
}

#define ELLM_TOKEN_SHIFT(T)                                                                    \
  template void token_shift_forward<T>(T*, const T*, int, int, int);                           \
  template void token_shift_backward<T>(T*, const T*, int, int, int);                          \
  template void token_shift_continue<T>(T*, T*, const T*, int, int, int);                      \
  template void lerp_forward<T>(T*, const T*, const T*, const T*, const T*, int, int);         \
  template void lerp_backward<T>(T*, T*, T*, T*, const T*, const T*, const T*, const T*, int, int);
ELLM_TOKEN_SHIFT(float)
ELLM_TOKEN_SHIFT(double)
#undef ELLM_TOKEN_SHIFT

}  // namespace ellm::layers
