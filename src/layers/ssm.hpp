// Mamba-1's selective scan (Gu & Dao 2023, arXiv 2312.00752, Algorithm 2), per sequence b, inner
// channel d and state element n, with Δ, B and C depending on the token:
//     h_t[d,n] = exp(Δ_t[d]·A[d,n]) · h_{t−1}[d,n] + Δ_t[d] · B_t[n] · u_t[d]     (h_{−1} = 0)
//     y_t[d]   = Σ_n C_t[n] · h_t[d,n] + D[d] · u_t[d]
// The states h are (B,T,D,N): N times the size of the input. Like the reference CUDA kernel, the
// fast path never stores them: forward keeps only the state at the end of every chunk of
// `chunk` tokens but the last, (B, ⌈T/chunk⌉−1, D, N), and backward recomputes each chunk's
// states and their exp(Δ·A) from its checkpoint, in a workspace of (2·chunk+2)·D·N + 2N
// elements, then runs the reverse recurrence through it. The naive reference keeps every state.
#pragma once
#include <cstddef>

namespace ellm::layers {

struct ScanShape {
  int B, Tn, D, N;
  int ld_bc;  // row stride of the B_t and C_t rows (they sit inside Mamba's x_proj output)
  int chunk;  // tokens between checkpoints (≥ 1; the naive reference ignores it)
  int chunks() const { return (Tn + chunk - 1) / chunk; }
  // Checkpoint elements: the state after every chunk but the last.
  std::size_t checkpoint_elems() const { return std::size_t(B) * (chunks() - 1) * D * N; }
  // Forward's and backward's workspace: one chunk's states and the state before it, their
  // exp(Δ·A), the state gradient, and two rows of N per-element terms.
  std::size_t work_elems() const { return (2 * std::size_t(chunk) + 2) * D * N + 2 * std::size_t(N); }
};

// y (B,T,D) from u (B,T,D), delta (B,T,D), A (D,N), Bm and Cm (B,T,·: N values at each row of
// stride ld_bc), Dskip (D); checkpoints (s.checkpoint_elems()) written. `work` has
// s.work_elems() elements.
template <class T>
void selective_scan_forward(T* y, T* checkpoints, const T* u, const T* delta, const T* A,
                            const T* Bm, const T* Cm, const T* Dskip, const ScanShape& s, T* work);

// From dy (B,T,D): du, ddelta (B,T,D) and dBm, dCm (rows of stride ld_bc, N values) overwritten;
// dA (D,N) and dD (D) accumulate. `work` has s.work_elems() elements.
template <class T>
void selective_scan_backward(T* du, T* ddelta, T* dA, T* dD, T* dBm, T* dCm, const T* dy,
                             const T* checkpoints, const T* u, const T* delta, const T* A,
                             const T* Bm, const T* Cm, const T* Dskip, const ScanShape& s, T* work);

// Decoding: the same recurrence from a given state, state (B,D,N) read as h_{−1} and left as the
// last token's h (a cached decode continues a sequence chunk by chunk). Other arguments as
// selective_scan_forward's.
template <class T>
void selective_scan_recurrent(T* y, T* state, const T* u, const T* delta, const T* A, const T* Bm,
                              const T* Cm, const T* Dskip, const ScanShape& s);

// The plain sequential scan that keeps every state, states (B,T,D,N) — the reference the chunked
// scan is tested against. Same arguments otherwise.
template <class T>
void selective_scan_forward_naive(T* y, T* states, const T* u, const T* delta, const T* A,
                                  const T* Bm, const T* Cm, const T* Dskip, const ScanShape& s);
template <class T>
void selective_scan_backward_naive(T* du, T* ddelta, T* dA, T* dD, T* dBm, T* dCm, const T* dy,
                                   const T* states, const T* u, const T* delta, const T* A,
                                   const T* Bm, const T* Cm, const T* Dskip, const ScanShape& s);

}  // namespace ellm::layers
