// RWKV-6 WKV, chunked and recurrent. The chunked form, for one head and one chunk of L tokens
// starting from state S (K×V), with A_t = Σ_{q<t} lw_q (the log-decay accumulated from the chunk
// start to just before token t; A_0 = 0, A_L the whole chunk), all in double:
//   y_t = (r_t ⊙ e^{A_t}) S + Σ_{s<t} P_ts v_s + (r_t·(u ⊙ k_t)) v_t,
//   P_ts = Σ_i r_ti k_si e^{A_ti − A_(s+1)i}                       (s < t),
//   S'   = diag(e^{A_L}) S + Σ_s (k_s ⊙ e^{A_L − A_(s+1)}) v_sᵀ.
// Every exponent is a sum of log-decays over an interval, so ≤ 0: nothing overflows however
// strong or weak the decays (docs/ATTENTION_FREE.md explains why no factor e^{−A} is formed).
// The three products with S and v are GEMMs; P is formed pair by pair (L²K per chunk).
#include "layers/wkv6.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "kernels/gemm.hpp"
#include "kernels/vmath.hpp"

namespace ellm::layers {
namespace {
using kernels::gemm;
using kernels::vexp;

double log_decay(double d) { return std::max(-std::exp(d), -kMaxLogDecay); }
bool clamped(double d) { return -std::exp(d) < -kMaxLogDecay; }

// One head's view of one chunk: its rows of r, k, v, d (stride ld), and the per-chunk workspace.
template <class T>
struct ChunkWork {
  int L = 0, K = 0;
  std::vector<double> A;   // (L+1,K) cumulative log-decay from the chunk start
  std::vector<T> eA, eK;   // (L,K) e^{A_t}, e^{A_L − A_(t+1)}
  std::vector<T> rq, kk;   // (L,K) r ⊙ e^{A_t}, k ⊙ e^{A_L − A_(t+1)}
  std::vector<T> P, e;     // (L,L) intra-chunk scores (bonus on the diagonal); (K) one pair's decays

  void resize(int chunk, int hs) {
    K = hs;
    A.resize(std::size_t(chunk + 1) * hs);
    for (auto* x : {&eA, &eK, &rq, &kk}) x->resize(std::size_t(chunk) * hs);
    P.resize(std::size_t(chunk) * chunk);
    e.resize(hs);
  }

  // The pair decays e^{A_t − A_(s+1)} (K) into e.
  void pair_decays(int t, int s) {
    const double* At = &A[std::size_t(t) * K];
    const double* As = &A[std::size_t(s + 1) * K];
    for (int i = 0; i < K; i++) e[i] = T(At[i] - As[i]);
    for (int i = 0; i < K; i++) e[i] = vexp(e[i]);
  }

  // Everything the forward and backward of a chunk share, from its L rows of r, k, d.
  void prepare(const T* r, const T* k, const T* d, const T* u, int ld, int len) {
    L = len;
    std::fill(A.begin(), A.begin() + K, 0.0);
    for (int t = 0; t < L; t++)
      for (int i = 0; i < K; i++)
        A[std::size_t(t + 1) * K + i] = A[std::size_t(t) * K + i] + log_decay(double(d[std::size_t(t) * ld + i]));
    const double* AL = &A[std::size_t(L) * K];
    for (int t = 0; t < L; t++) {
      for (int i = 0; i < K; i++) {
        const std::size_t ti = std::size_t(t) * K + i;
        eA[ti] = vexp(T(A[ti]));
        eK[ti] = vexp(T(AL[i] - A[ti + K]));
        rq[ti] = r[std::size_t(t) * ld + i] * eA[ti];
        kk[ti] = k[std::size_t(t) * ld + i] * eK[ti];
      }
    }
    for (int t = 0; t < L; t++) {
      const T* rt = r + std::size_t(t) * ld;
      T* Pt = &P[std::size_t(t) * L];
      for (int s = 0; s < t; s++) {
        pair_decays(t, s);
        const T* ks = k + std::size_t(s) * ld;
        T acc = 0;
        for (int i = 0; i < K; i++) acc += rt[i] * ks[i] * e[i];
        Pt[s] = acc;
      }
      T bonus = 0;
      for (int i = 0; i < K; i++) bonus += rt[i] * u[i] * k[std::size_t(t) * ld + i];
      Pt[t] = bonus;
      std::fill(Pt + t + 1, Pt + L, T(0));
    }
  }
};

// S (K×V) rows scaled by e^{A_L}: the state carried across the whole chunk.
template <class T>
void decay_rows(T* S, const ChunkWork<T>& w, int V) {
  const double* AL = &w.A[std::size_t(w.L) * w.K];
  for (int i = 0; i < w.K; i++) {
    const T f = vexp(T(AL[i]));
    for (int j = 0; j < V; j++) S[std::size_t(i) * V + j] *= f;
  }
}

}  // namespace

template <class T>
void wkv6_forward(T* y, T* states, const T* r, const T* k, const T* v, const T* d, const T* u,
                  const Wkv6Shape& s, const T* init, T* final_state) {
  const int K = s.hs, V = s.hs, ld = s.H * s.hs, nc = s.chunks();
  const std::size_t KV = std::size_t(K) * V;
  thread_local ChunkWork<T> w;
  w.resize(s.chunk, K);
  thread_local std::vector<T> state;  // reused: the step allocates nothing after the first
  state.assign(KV, T(0));
  std::vector<T>& S = state;
  for (int b = 0; b < s.B; b++) {
    for (int h = 0; h < s.H; h++) {
      const std::size_t bh = std::size_t(b) * s.H + h;
      if (init) {
        std::copy(init + bh * KV, init + (bh + 1) * KV, S.begin());
      } else {
        std::fill(S.begin(), S.end(), T(0));
      }
      for (int c = 0; c < nc; c++) {
        const int t0 = c * s.chunk, L = std::min(s.chunk, s.T - t0);
        const std::size_t o = (std::size_t(b) * s.T + t0) * ld + std::size_t(h) * s.hs;
        std::copy(S.begin(), S.end(), states + (bh * nc + c) * KV);
        w.prepare(r + o, k + o, d + o, u + h * s.hs, ld, L);
        gemm(false, false, L, V, K, T(1), w.rq.data(), K, S.data(), V, T(0), y + o, ld);   // (L,V)
        gemm(false, false, L, V, L, T(1), w.P.data(), L, v + o, ld, T(1), y + o, ld);
        decay_rows(S.data(), w, V);
        gemm(true, false, K, V, L, T(1), w.kk.data(), K, v + o, ld, T(1), S.data(), V);  // (K,V)
      }
      if (final_state) std::copy(S.begin(), S.end(), final_state + bh * KV);
    }
  }
}

// Backward of one chunk, given dS, the gradient of the state it hands on (K×V), which becomes
// the gradient of the state it received. G (L+1,K) collects ∂/∂A: A_t enters as +A_t (a query's
// decay) and as −A_(s+1) (a key's), A_L also through the carried state; lw_q feeds every A_m
// with m > q, so ∂/∂lw_q = Σ_{m>q} G_m.
template <class T>
void wkv6_backward(T* dr, T* dk, T* dv, T* dd, T* du, const T* dy, const T* r, const T* k,
                   const T* v, const T* d, const T* u, const T* states, const Wkv6Shape& s) {
  const int K = s.hs, V = s.hs, ld = s.H * s.hs, nc = s.chunks(), C = s.chunk;
  const std::size_t KV = std::size_t(K) * V;
  thread_local ChunkWork<T> w;
  w.resize(C, K);
  // Workspaces reused from call to call (zeroed as fresh ones were): no allocation after the first.
  thread_local std::vector<T> dS, dP, drq, dkk, drl, dkl;
  thread_local std::vector<double> G;
  dS.assign(KV, T(0)), dP.assign(std::size_t(C) * C, T(0));
  for (auto* x : {&drq, &dkk, &drl, &dkl}) x->assign(std::size_t(C) * K, T(0));
  G.assign(std::size_t(C + 1) * K, 0.0);
  for (int b = 0; b < s.B; b++) {
    for (int h = 0; h < s.H; h++) {
      const std::size_t bh = std::size_t(b) * s.H + h;
      const T* uh = u + h * s.hs;
      T* duh = du + h * s.hs;
      std::fill(dS.begin(), dS.end(), T(0));
      for (int c = nc - 1; c >= 0; c--) {
        const int t0 = c * s.chunk, L = std::min(s.chunk, s.T - t0);
        const std::size_t o = (std::size_t(b) * s.T + t0) * ld + std::size_t(h) * s.hs;
        const T* S0 = states + (bh * nc + c) * KV;
        const T *rc = r + o, *kc = k + o, *vc = v + o, *dyc = dy + o;
        w.prepare(rc, kc, d + o, uh, ld, L);
        gemm(true, false, L, V, L, T(1), w.P.data(), L, dyc, ld, T(0), dv + o, ld);        // Pᵀ dy
        gemm(false, false, L, V, K, T(1), w.kk.data(), K, dS.data(), V, T(1), dv + o, ld);
        gemm(false, true, L, L, V, T(1), dyc, ld, vc, ld, T(0), dP.data(), L);            // dy vᵀ
        gemm(false, true, L, K, V, T(1), dyc, ld, S0, V, T(0), drq.data(), K);            // dy S0ᵀ
        gemm(false, true, L, K, V, T(1), vc, ld, dS.data(), V, T(0), dkk.data(), K);      // v dSᵀ
        std::fill(G.begin(), G.begin() + std::size_t(L + 1) * K, 0.0);
        const double* AL = &w.A[std::size_t(L) * K];
        for (int i = 0; i < K; i++) {  // the carried state's own decay
          double acc = 0;
          for (int j = 0; j < V; j++) acc += double(S0[std::size_t(i) * V + j]) * dS[std::size_t(i) * V + j];
          G[std::size_t(L) * K + i] += std::exp(AL[i]) * acc;
        }
        for (int t = 0; t < L; t++) {  // the state terms
          const T *rt = rc + std::size_t(t) * ld, *kt = kc + std::size_t(t) * ld;
          for (int i = 0; i < K; i++) {
            const std::size_t ti = std::size_t(t) * K + i;
            drl[ti] = drq[ti] * w.eA[ti];
            dkl[ti] = dkk[ti] * w.eK[ti];
            G[ti] += double(rt[i]) * drl[ti];
            const double q = double(kt[i]) * dkl[ti];
            G[ti + K] -= q;
            G[std::size_t(L) * K + i] += q;
          }
        }
        for (int t = 0; t < L; t++) {  // the intra-chunk pairs and the bonus
          const T* rt = rc + std::size_t(t) * ld;
          T* drt = &drl[std::size_t(t) * K];
          for (int s2 = 0; s2 < t; s2++) {
            const T x = dP[std::size_t(t) * L + s2];
            w.pair_decays(t, s2);
            const T* ks = kc + std::size_t(s2) * ld;
            T* dks = &dkl[std::size_t(s2) * K];
            double* Gt = &G[std::size_t(t) * K];
            double* Gs = &G[std::size_t(s2 + 1) * K];
            for (int i = 0; i < K; i++) {
              const T xe = x * w.e[i];
              drt[i] += xe * ks[i];
              dks[i] += xe * rt[i];
              const double q = double(xe * rt[i]) * ks[i];
              Gt[i] += q;
              Gs[i] -= q;
            }
          }
          const T x = dP[std::size_t(t) * L + t];
          const T* kt = kc + std::size_t(t) * ld;
          T* dkt = &dkl[std::size_t(t) * K];
          for (int i = 0; i < K; i++) {
            drt[i] += x * uh[i] * kt[i];
            dkt[i] += x * uh[i] * rt[i];
            duh[i] += x * rt[i] * kt[i];
          }
        }
        decay_rows(dS.data(), w, V);
        gemm(true, false, K, V, L, T(1), w.rq.data(), K, dyc, ld, T(1), dS.data(), V);  // + rqᵀ dy
        for (int i = 0; i < K; i++) {
          double acc = 0;
          for (int t = L - 1; t >= 0; t--) {
            acc += G[std::size_t(t + 1) * K + i];
            const std::size_t at = o + std::size_t(t) * ld + i;
            const double dt = double(d[at]);
            dd[at] = clamped(dt) ? T(0) : T(acc * log_decay(dt));  // ∂lw/∂d = −e^d = lw
            dr[at] = drl[std::size_t(t) * K + i];
            dk[at] = dkl[std::size_t(t) * K + i];
          }
        }
      }
    }
  }
}

template <class T>
void wkv6_step(T* y, T* state, const T* r, const T* k, const T* v, const T* d, const T* u, int H,
               int hs) {
  const std::size_t KV = std::size_t(hs) * hs;
  for (int h = 0; h < H; h++) {
    T* S = state + h * KV;
    const std::size_t o = std::size_t(h) * hs;
    T* yh = y + o;
    std::fill(yh, yh + hs, T(0));
    for (int i = 0; i < hs; i++) {  // y = r · (S + diag(u) k vᵀ)
      const T ri = r[o + i], bonus = ri * u[o + i] * k[o + i];
      for (int j = 0; j < hs; j++) yh[j] += ri * S[std::size_t(i) * hs + j] + bonus * v[o + j];
    }
    for (int i = 0; i < hs; i++) {  // S = diag(w) S + k vᵀ
      const T wi = T(std::exp(log_decay(double(d[o + i])))), ki = k[o + i];
      for (int j = 0; j < hs; j++) S[std::size_t(i) * hs + j] = wi * S[std::size_t(i) * hs + j] + ki * v[o + j];
    }
  }
}

template <class T>
void wkv6_recurrent(T* y, T* state, const T* r, const T* k, const T* v, const T* d, const T* u,
                    const Wkv6Shape& s) {
  const std::size_t C = std::size_t(s.H) * s.hs, KV = std::size_t(s.hs) * s.hs;
  for (int b = 0; b < s.B; b++) {
    for (int t = 0; t < s.T; t++) {
      const std::size_t o = (std::size_t(b) * s.T + t) * C;
      wkv6_step(y + o, state + std::size_t(b) * s.H * KV, r + o, k + o, v + o, d + o, u, s.H, s.hs);
    }
  }
}

#define ELLM_WKV6(T)                                                                              \
  template void wkv6_forward<T>(T*, T*, const T*, const T*, const T*, const T*, const T*,         \
                                const Wkv6Shape&, const T*, T*);                                  \
  template void wkv6_backward<T>(T*, T*, T*, T*, T*, const T*, const T*, const T*, const T*,      \
                                 const T*, const T*, const T*, const Wkv6Shape&);                 \
  template void wkv6_step<T>(T*, T*, const T*, const T*, const T*, const T*, const T*, int, int); \
  template void wkv6_recurrent<T>(T*, T*, const T*, const T*, const T*, const T*, const T*,       \
                                  const Wkv6Shape&);
ELLM_WKV6(float)
ELLM_WKV6(double)
#undef ELLM_WKV6

}  // namespace ellm::layers
