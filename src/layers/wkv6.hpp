// RWKV-6 "Finch" WKV: per head, a (K×V) matrix state with a data-dependent per-channel decay
// (Peng et al. 2024, arXiv 2404.05892). For one head and one sequence, with K = V = head size:
//   y_t = r_t · (S_{t-1} + diag(u) k_t v_tᵀ),    S_t = diag(w_t) S_{t-1} + k_t v_tᵀ,
//   w_t = exp(−exp(d_t)),  so the log-decay lw_t = −exp(d_t) ≤ 0 (clamped at −kMaxLogDecay).
// Two forms of the same function: the chunked one used for training (GEMMs within a chunk, the
// state carried between chunks, every exponent ≤ 0 — docs/ATTENTION_FREE.md) with its backward,
// and the one-token recurrence used for decoding and as the reference.
#pragma once

namespace ellm::layers {

// exp(−100) is below float's smallest normal: a decay that strong forgets the state entirely in
// either form, and the clamp keeps cumulative log-decays finite (no −inf − −inf).
inline constexpr double kMaxLogDecay = 100.0;

struct Wkv6Shape {
  int B, T, H, hs;  // sequences, tokens, heads, head size
  int chunk;        // tokens per chunk of the chunked form
  int chunks() const { return (T + chunk - 1) / chunk; }
};

// r, k, v, d, y: (B,T,H·hs); u: (H·hs); states: (B,H,chunks,hs,hs), the state entering each
// chunk (saved for backward). init (B,H,hs,hs) may be nullptr (zero state); final_state
// (B,H,hs,hs) may be nullptr.
template <class T>
void wkv6_forward(T* y, T* states, const T* r, const T* k, const T* v, const T* d, const T* u,
                  const Wkv6Shape& s, const T* init = nullptr, T* final_state = nullptr);

// Gradients of Σ dy·y: dr, dk, dv, dd (B,T,H·hs) overwritten; du (H·hs) accumulates. states is
// wkv6_forward's (the zero initial state is assumed).
template <class T>
void wkv6_backward(T* dr, T* dk, T* dv, T* dd, T* du, const T* dy, const T* r, const T* k,
                   const T* v, const T* d, const T* u, const T* states, const Wkv6Shape& s);

// One token of one sequence: y (H·hs) from r, k, v, d (H·hs); state (H,hs,hs) updated in place.
template <class T>
void wkv6_step(T* y, T* state, const T* r, const T* k, const T* v, const T* d, const T* u, int H,
               int hs);

// The reference: wkv6_step token by token. state (B,H,hs,hs) holds the initial state (zeros for
// training) and ends as the final one.
template <class T>
void wkv6_recurrent(T* y, T* state, const T* r, const T* k, const T* v, const T* d, const T* u,
                    const Wkv6Shape& s);

}  // namespace ellm::layers
