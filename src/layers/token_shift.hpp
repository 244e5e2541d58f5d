// RWKV's token shift and its linear interpolations ("lerp", "ddlerp"): each token mixes its own
// input x_t with the previous token's, x_{t−1} (zeros before the first token of a sequence).
#pragma once

namespace ellm::layers {

// xx (B,T,C) = x_{t−1} − x_t per sequence (x_{−1} = 0).
template <class T>
void token_shift_forward(T* xx, const T* x, int B, int Tn, int C);
// Decoding: xx from token_shift_forward on a chunk that continues after last (B,C), each
// sequence's previous input: the first row gains last, and last becomes the chunk's final x.
template <class T>
void token_shift_continue(T* xx, T* last, const T* x, int B, int Tn, int C);
// dx (B,T,C) += the gradient through xx given dxx (B,T,C).
template <class T>
void token_shift_backward(T* dx, const T* dxx, int B, int Tn, int C);

// out (N,C) = x + xx ⊙ (mu + m): mu (C) per channel, m (N,C) the data-dependent part (nullptr: 0).
template <class T>
void lerp_forward(T* out, const T* x, const T* xx, const T* mu, const T* m, int N, int C);
// From dout (N,C): dx += dout; dxx += dout ⊙ (mu + m); dmu (C) += Σₙ dout ⊙ xx;
// dm (N,C) = dout ⊙ xx (overwritten; nullptr skips it).
template <class T>
void lerp_backward(T* dx, T* dxx, T* dmu, T* dm, const T* dout, const T* xx, const T* mu,
                   const T* m, int N, int C);

}  // namespace ellm::layers
