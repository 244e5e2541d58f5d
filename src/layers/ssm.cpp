#include "layers/ssm.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/vmath.hpp"

namespace ellm::layers {
namespace {
using kernels::vexp;

// One token's inputs: u, delta, y rows (D) and its B, C rows (N).
template <class T>
struct TokenRows {
  const T *u, *delta, *Bt, *Ct;
};

template <class T>
TokenRows<T> token(const T* u, const T* delta, const T* Bm, const T* Cm, const ScanShape& s,
                   std::size_t row) {
  return {u + row * s.D, delta + row * s.D, Bm + row * s.ld_bc, Cm + row * s.ld_bc};
}

// h_out (D,N) ← e ⊙ h_in + Δ·u·B for every channel, e = exp(Δ·A) written to e_out (D,N) for
// backward; h_out may be h_in. With y, also y (D) = Σ_n C ⊙ h_out + D·u. Loops over n are
// innermost and branch-free, so they vectorise.
template <class T>
void scan_step(T* h_out, T* e_out, const T* h_in, const TokenRows<T>& r, const T* A,
               const T* Dskip, T* y, const ScanShape& s) {
  const int N = s.N;
  for (int d = 0; d < s.D; d++) {
    const T dt = r.delta[d], du = dt * r.u[d];
    const T* Ad = A + std::size_t(d) * N;
    const T* hi = h_in + std::size_t(d) * N;
    T* ho = h_out + std::size_t(d) * N;
    T* eo = e_out + std::size_t(d) * N;
    for (int n = 0; n < N; n++) {
      eo[n] = vexp(dt * Ad[n]);
      ho[n] = eo[n] * hi[n] + du * r.Bt[n];
    }
    if (!y) continue;
    T acc = 0;
    for (int n = 0; n < N; n++) acc += r.Ct[n] * ho[n];
    y[d] = acc + Dskip[d] * r.u[d];
  }
}

// One channel's share of the reverse step, element by element of the state (see
// selective_scan_backward's comment in ssm.hpp for the formulas). The pointers never overlap;
// saying so lets the compiler vectorise the loop, exp included, without runtime alias checks.
template <class T>
void state_grads(int N, T g, T dt, T ud, const T* __restrict Ad, const T* __restrict ed,
                 const T* __restrict hp,
                 const T* __restrict hc, const T* __restrict Bt, const T* __restrict Ct,
                 T* __restrict dh, T* __restrict dA, T* __restrict dB, T* __restrict dC,
                 T* __restrict ddelta_terms, T* __restrict du_terms) {
  for (int n = 0; n < N; n++) {
    dC[n] += hc[n] * g;
    const T dhn = dh[n] + Ct[n] * g;  // y_t reads h_t
    const T e = ed[n];
    const T carried = dhn * e * hp[n];
    dA[n] += carried * dt;
    ddelta_terms[n] = carried * Ad[n] + dhn * Bt[n] * ud;
    du_terms[n] = dhn * Bt[n];
    dB[n] += dhn * dt * ud;
    dh[n] = dhn * e;
  }
}

// The reverse recurrence through token `row`: h_prev, h the states before and after it, e its
// exp(Δ·A) (D,N); dh (D,N) holds ∂L/∂h_t from later tokens and leaves as ∂L/∂h_{t−1}. `terms`
// has 2N elements.
template <class T>
void scan_step_backward(T* du, T* ddelta, T* dA, T* dD, T* dBt, T* dCt, const T* dy,
                        const T* h_prev, const T* h, const T* e, T* dh, const TokenRows<T>& r, const T* A,
                        const T* Dskip, const ScanShape& s, T* terms) {
  const int N = s.N;
  T* ddelta_terms = terms;  // (N)
  T* du_terms = terms + N;  // (N)
  std::fill_n(dBt, N, T(0));
  std::fill_n(dCt, N, T(0));
  for (int d = 0; d < s.D; d++) {
    const T g = dy[d], dt = r.delta[d], ud = r.u[d];
    const std::size_t o = std::size_t(d) * N;
    const T *Ad = A + o, *ed = e + o, *hp = h_prev + o, *hc = h + o;
    T *dhd = dh + o, *dAd = dA + o;
    state_grads(N, g, dt, ud, Ad, ed, hp, hc, r.Bt, r.Ct, dhd, dAd, dBt, dCt, ddelta_terms, du_terms);
    T sum_delta = 0, sum_u = 0;
    for (int n = 0; n < N; n++) {
      sum_delta += ddelta_terms[n];
      sum_u += du_terms[n];
    }
    ddelta[d] = sum_delta;
    du[d] = dt * sum_u + Dskip[d] * g;
    dD[d] += g * ud;
  }
}

}  // namespace

template <class T>
void selective_scan_forward(T* y, T* checkpoints, const T* u, const T* delta, const T* A,
                            const T* Bm, const T* Cm, const T* Dskip, const ScanShape& s, T* work) {
  const std::size_t DN = std::size_t(s.D) * s.N;
  T* h = work;       // (D,N), updated in place
  T* e = work + DN;  // (D,N), this token's exp(Δ·A): only backward keeps them
  for (int b = 0; b < s.B; b++) {
    std::fill_n(h, DN, T(0));
    T* saved = checkpoints + std::size_t(b) * (s.chunks() - 1) * DN;  // (chunks−1, D, N)
    for (int t = 0; t < s.Tn; t++) {
      const std::size_t row = std::size_t(b) * s.Tn + t;
      scan_step(h, e, h, token(u, delta, Bm, Cm, s, row), A, Dskip, y + row * s.D, s);
      if ((t + 1) % s.chunk == 0 && t + 1 < s.Tn) saved = std::copy_n(h, DN, saved);
    }
  }
}

template <class T>
void selective_scan_backward(T* du, T* ddelta, T* dA, T* dD, T* dBm, T* dCm, const T* dy,
                             const T* checkpoints, const T* u, const T* delta, const T* A,
                             const T* Bm, const T* Cm, const T* Dskip, const ScanShape& s, T* work) {
  const std::size_t DN = std::size_t(s.D) * s.N;
  const std::size_t c = s.chunk;
  T* states = work;                 // (chunk+1, D, N): one chunk's states and the one before
  T* exps = states + (c + 1) * DN;  // (chunk, D, N): their exp(Δ·A), kept for the reverse step
  T* dh = exps + c * DN;            // (D,N)
  T* terms = dh + DN;               // (2N)
  for (int b = 0; b < s.B; b++) {
    std::fill_n(dh, DN, T(0));
    const T* saved = checkpoints + std::size_t(b) * (s.chunks() - 1) * DN;
    for (int k = s.chunks() - 1; k >= 0; k--) {
      const int t0 = k * s.chunk, len = std::min(s.chunk, s.Tn - t0);
      // Recompute the chunk's states from the one saved before it (zeros before token 0).
      if (k == 0) {
        std::fill_n(states, DN, T(0));
      } else {
        std::copy_n(saved + std::size_t(k - 1) * DN, DN, states);
      }
      const std::size_t row0 = std::size_t(b) * s.Tn + t0;
      for (int i = 0; i < len; i++) {
        scan_step(states + (i + 1) * DN, exps + i * DN, states + i * DN,
                  token(u, delta, Bm, Cm, s, row0 + i), A, Dskip, static_cast<T*>(nullptr), s);
      }
      for (int i = len - 1; i >= 0; i--) {
        const std::size_t row = row0 + i;
        scan_step_backward(du + row * s.D, ddelta + row * s.D, dA, dD, dBm + row * s.ld_bc,
                           dCm + row * s.ld_bc, dy + row * s.D, states + i * DN,
                           states + (i + 1) * DN, exps + i * DN, dh, token(u, delta, Bm, Cm, s, row), A, Dskip,
                           s, terms);
      }
    }
  }
}

template <class T>
void selective_scan_recurrent(T* y, T* state, const T* u, const T* delta, const T* A, const T* Bm,
                              const T* Cm, const T* Dskip, const ScanShape& s) {
  const int D = s.D, N = s.N;
  for (int b = 0; b < s.B; b++) {
    for (int t = 0; t < s.Tn; t++) {
      const std::size_t row = std::size_t(b) * s.Tn + t;
      const T *Bt = Bm + row * s.ld_bc, *Ct = Cm + row * s.ld_bc;
      for (int d = 0; d < D; d++) {
        const T dt = delta[row * D + d], x = u[row * D + d];
        T* h = state + (std::size_t(b) * D + d) * N;  // (N)
        T acc = 0;
        for (int n = 0; n < N; n++) {
          h[n] = std::exp(dt * A[d * N + n]) * h[n] + dt * Bt[n] * x;
          acc += Ct[n] * h[n];
        }
        y[row * D + d] = acc + Dskip[d] * x;
      }
    }
  }
}

// ---- the naive reference: every state kept, one channel at a time, libm's exp ----

template <class T>
void selective_scan_forward_naive(T* y, T* states, const T* u, const T* delta, const T* A,
                                  const T* Bm, const T* Cm, const T* Dskip, const ScanShape& s) {
  const int D = s.D, N = s.N;
  for (int b = 0; b < s.B; b++) {
    for (int d = 0; d < D; d++) {
      for (int t = 0; t < s.Tn; t++) {
        const std::size_t row = std::size_t(b) * s.Tn + t;
        const T dt = delta[row * D + d], x = u[row * D + d];
        T acc = 0;
        for (int n = 0; n < N; n++) {
          const T prev = t == 0 ? T(0) : states[((row - 1) * D + d) * N + n];
          const T h = std::exp(dt * A[d * N + n]) * prev + dt * Bm[row * s.ld_bc + n] * x;
          states[(row * D + d) * N + n] = h;
          acc += Cm[row * s.ld_bc + n] * h;
        }
        y[row * D + d] = acc + Dskip[d] * x;
      }
    }
  }
}

template <class T>
void selective_scan_backward_naive(T* du, T* ddelta, T* dA, T* dD, T* dBm, T* dCm, const T* dy,
                                   const T* states, const T* u, const T* delta, const T* A,
                                   const T* Bm, const T* Cm, const T* Dskip, const ScanShape& s) {
  const int D = s.D, N = s.N;
  for (int b = 0; b < s.B; b++) {
    for (int t = 0; t < s.Tn; t++) {
      const std::size_t row = std::size_t(b) * s.Tn + t;
      std::fill_n(dBm + row * s.ld_bc, N, T(0));
      std::fill_n(dCm + row * s.ld_bc, N, T(0));
    }
    for (int d = 0; d < D; d++) {
      std::vector<T> dh(N, T(0));  // ∂L/∂h_t[d,·], carried backwards in time
      for (int t = s.Tn - 1; t >= 0; t--) {
        const std::size_t row = std::size_t(b) * s.Tn + t;
        const T g = dy[row * D + d], dt = delta[row * D + d], x = u[row * D + d];
        T ddt = 0, dx = Dskip[d] * g;
        dD[d] += g * x;
        for (int n = 0; n < N; n++) {
          const T h = states[(row * D + d) * N + n];
          const T prev = t == 0 ? T(0) : states[((row - 1) * D + d) * N + n];
          const T a = A[d * N + n], e = std::exp(dt * a), bn = Bm[row * s.ld_bc + n];
          dCm[row * s.ld_bc + n] += g * h;
          dh[n] += g * Cm[row * s.ld_bc + n];
          ddt += dh[n] * (a * e * prev + bn * x);
          dA[d * N + n] += dh[n] * dt * e * prev;
          dBm[row * s.ld_bc + n] += dh[n] * dt * x;
          dx += dh[n] * dt * bn;
          dh[n] *= e;
        }
        ddelta[row * D + d] = ddt;
        du[row * D + d] = dx;
      }
    }
  }
}

#define ELLM_INSTANTIATE(T)                                                                      \
  template void selective_scan_forward<T>(T*, T*, const T*, const T*, const T*, const T*,        \
                                          const T*, const T*, const ScanShape&, T*);             \
  template void selective_scan_backward<T>(T*, T*, T*, T*, T*, T*, const T*, const T*, const T*, \
                                           const T*, const T*, const T*, const T*, const T*,     \
                                           const ScanShape&, T*);                                \
  template void selective_scan_recurrent<T>(T*, T*, const T*, const T*, const T*, const T*,      \
                                            const T*, const T*, const ScanShape&);               \
  template void selective_scan_forward_naive<T>(T*, T*, const T*, const T*, const T*, const T*,  \
                                                const T*, const T*, const ScanShape&);           \
  template void selective_scan_backward_naive<T>(T*, T*, T*, T*, T*, T*, const T*, const T*,     \
                                                 const T*, const T*, const T*, const T*,         \
                                                 const T*, const T*, const ScanShape&);
ELLM_INSTANTIATE(float)
ELLM_INSTANTIATE(double)
#undef ELLM_INSTANTIATE

}  // namespace ellm::layers
