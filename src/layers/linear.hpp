// Fully connected layer: out = inp · Wᵀ + b. Both GEMMs of its backward go through kernels::gemm.
#pragma once

namespace ellm::layers {

// out (N,OC) = inp (N,C) · W (OC,C)ᵀ + b (OC); b may be nullptr.
template <class T>
void linear_forward(T* out, const T* inp, const T* W, const T* b, int N, int C, int OC);

// dinp (N,C) = dout · W (overwritten; nullptr skips it);
// dW (OC,C) += doutᵀ · inp (nullptr: a frozen weight, whose GEMM is skipped);
// db (OC) += Σₙ dout (nullptr when the layer has no bias or it is frozen), over blocks of columns
// on the rank's threads (bit-identical for any thread count).
template <class T>
void linear_backward(T* dinp, T* dW, T* db, const T* dout, const T* inp, const T* W, int N, int C,
                     int OC);

// As linear_backward, but dinp (N,C) += dout · W (the GEMM accumulates: beta = 1): for an input
// that feeds several projections (MLA's and NSA's latents and inputs, MoE's router, Mamba's x_proj).
template <class T>
void linear_backward_accumulate(T* dinp, T* dW, T* db, const T* dout, const T* inp, const T* W,
                                int N, int C, int OC);

}  // namespace ellm::layers
