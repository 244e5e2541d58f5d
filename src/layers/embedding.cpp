#include "layers/embedding.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "util/phases.hpp"

namespace ellm::layers {

template <class T>
void embedding_forward(T* out, const int* tokens, const T* wte, int B, int Tn, int C,
                       int vocab_begin, int vocab_end) {
  const PhaseScope phase(Phase::elementwise);
  for (int n = 0; n < B * Tn; n++) {
    T* y = out + std::size_t(n) * C;
    const int tok = tokens[n];
    if (tok >= vocab_begin && tok < vocab_end) {
      std::copy_n(wte + std::size_t(tok - vocab_begin) * C, C, y);
    } else {
      std::fill_n(y, C, T(0));
    }
  }
}

template <class T>
void embedding_backward(T* dwte, const T* dout, const int* tokens, int B, int Tn, int C,
                        int vocab_begin, int vocab_end) {
  const PhaseScope phase(Phase::elementwise);
  for (int n = 0; n < B * Tn; n++) {
    const int tok = tokens[n];
    if (tok < vocab_begin || tok >= vocab_end) continue;
    const T* dy = dout + std::size_t(n) * C;
    T* de = dwte + std::size_t(tok - vocab_begin) * C;
    for (int c = 0; c < C; c++) de[c] += dy[c];
  }
}

template <class T>
void positions_forward(T* out, const T* pos, int rows, int first_row, int Tn, int C) {
  const PhaseScope phase(Phase::elementwise);
  for (int i = 0; i < rows; i++) {
    const T* p = pos + std::size_t((first_row + i) % Tn) * C;
    T* y = out + std::size_t(i) * C;
    for (int c = 0; c < C; c++) y[c] += p[c];
  }
}

template <class T>
void positions_backward(T* dpos, const T* dout, int rows, int first_row, int Tn, int C) {
  const PhaseScope phase(Phase::elementwise);
  for (int i = 0; i < rows; i++) {
    T* dp = dpos + std::size_t((first_row + i) % Tn) * C;
    const T* dy = dout + std::size_t(i) * C;
    for (int c = 0; c < C; c++) dp[c] += dy[c];
  }
}

template <class T>
std::vector<T> sinusoid_table(int Tn, int C, double scale) {
  std::vector<T> table(std::size_t(Tn) * C);
  for (int t = 0; t < Tn; t++) {
    for (int c = 0; c < C; c++) {
      const double angle = t / std::pow(10000.0, double(c - c % 2) / C);
      table[std::size_t(t) * C + c] = T(scale * (c % 2 == 0 ? std::sin(angle) : std::cos(angle)));
    }
  }
  return table;
}

#define ELLM_INSTANTIATE(T)                                                               \
  template void embedding_forward<T>(T*, const int*, const T*, int, int, int, int, int);  \
  template void embedding_backward<T>(T*, const T*, const int*, int, int, int, int, int); \
  template void positions_forward<T>(T*, const T*, int, int, int, int);                    \
  template void positions_backward<T>(T*, const T*, int, int, int, int);                   \
  template std::vector<T> sinusoid_table<T>(int, int, double);
ELLM_INSTANTIATE(float)
ELLM_INSTANTIATE(double)
#undef ELLM_INSTANTIATE

}  // namespace ellm::layers
