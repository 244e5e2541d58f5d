#include "layers/activation.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include "kernels/vmath.hpp"
#include "util/phases.hpp"
#include "util/thread_pool.hpp"

namespace ellm::layers {
namespace {
constexpr double kGeluScale = 0.7978845608028654;  // sqrt(2/pi)
constexpr double kGeluCubic = 0.044715;
constexpr double kInvSqrt2 = 0.7071067811865476;     // 1/sqrt(2)
constexpr double kInvSqrt2Pi = 0.3989422804014327;   // 1/sqrt(2 pi)
constexpr std::int64_t kTranscendentalCost = 32;      // elementary operations per tanh/erf/exp

// Elementwise: fn(i) for i in [0, n) on the rank's threads (independent items: results do not
// depend on the thread count).
template <class Fn>
void each_element(long n, Fn fn) {
  parallel_items(n, kTranscendentalCost, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; i++) fn(long(i));
  });
}
// fn(n) for the rows [0, N) of F gated elements each.
template <class Fn>
void each_row(int N, int F, Fn fn) {
  parallel_items(N, std::int64_t(F) * kTranscendentalCost, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t n = b; n < e; n++) fn(int(n));
  });
}
}  // namespace

template <class T>
void gelu_forward(T* out, const T* inp, long n) {
  const PhaseScope phase(Phase::elementwise);
  each_element(n, [&](long i) {
    const T x = inp[i];
    const T u = T(kGeluScale) * (x + T(kGeluCubic) * x * x * x);
    out[i] = T(0.5) * x * (T(1) + kernels::vtanh(u));
  });
}

template <class T>
void gelu_backward(T* dinp, const T* inp, const T* dout, long n) {
  const PhaseScope phase(Phase::elementwise);
  each_element(n, [&](long i) {
    const T x = inp[i];
    const T u = T(kGeluScale) * (x + T(kGeluCubic) * x * x * x);
    const T th = kernels::vtanh(u);
    const T du = T(kGeluScale) * (T(1) + T(3 * kGeluCubic) * x * x);
    const T grad = T(0.5) * (T(1) + th) + T(0.5) * x * (T(1) - th * th) * du;
    dinp[i] = grad * dout[i];
  });
}

template <class T>
void gelu_exact_forward(T* out, const T* inp, long n) {
  const PhaseScope phase(Phase::elementwise);
  each_element(n, [&](long i) {
    const T x = inp[i];
    out[i] = T(0.5) * x * (T(1) + std::erf(x * T(kInvSqrt2)));
  });
}

template <class T>
void gelu_exact_backward(T* dinp, const T* inp, const T* dout, long n) {
  const PhaseScope phase(Phase::elementwise);
  each_element(n, [&](long i) {
    const T x = inp[i];
    const T cdf = T(0.5) * (T(1) + std::erf(x * T(kInvSqrt2)));
    const T pdf = T(kInvSqrt2Pi) * std::exp(T(-0.5) * x * x);
    dinp[i] = (cdf + x * pdf) * dout[i];
  });
}

template <class T>
void swiglu_forward(T* out, const T* inp, int N, int F) {
  const PhaseScope phase(Phase::elementwise);
  each_row(N, F, [&](int n) {
    const T* gate = inp + size_t(n) * 2 * F;
    const T* up = gate + F;
    T* y = out + size_t(n) * F;
    for (int f = 0; f < F; f++) {
      const T sig = T(1) / (T(1) + kernels::vexp(-gate[f]));
      y[f] = gate[f] * sig * up[f];
    }
  });
}

template <class T>
void swiglu_backward(T* dinp, const T* inp, const T* dout, int N, int F) {
  const PhaseScope phase(Phase::elementwise);
  each_row(N, F, [&](int n) {
    const T* gate = inp + size_t(n) * 2 * F;
    const T* up = gate + F;
    const T* dy = dout + size_t(n) * F;
    T* dgate = dinp + size_t(n) * 2 * F;
    T* dup = dgate + F;
    for (int f = 0; f < F; f++) {
      const T sig = T(1) / (T(1) + kernels::vexp(-gate[f]));
      const T silu = gate[f] * sig;
      dup[f] = dy[f] * silu;
      dgate[f] = dy[f] * up[f] * sig * (T(1) + gate[f] * (T(1) - sig));
    }
  });
}

#define ELLM_INSTANTIATE(T)                                                 \
  template void gelu_forward<T>(T*, const T*, long);                        \
  template void gelu_backward<T>(T*, const T*, const T*, long);             \
  template void gelu_exact_forward<T>(T*, const T*, long);                  \
  template void gelu_exact_backward<T>(T*, const T*, const T*, long);       \
  template void swiglu_forward<T>(T*, const T*, int, int);                  \
  template void swiglu_backward<T>(T*, const T*, const T*, int, int);
ELLM_INSTANTIATE(float)
ELLM_INSTANTIATE(double)
#undef ELLM_INSTANTIATE

}  // namespace ellm::layers
