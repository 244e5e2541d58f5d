// Causal depthwise 1-D convolution over time (Mamba's short convolution): each channel d of each
// sequence is filtered by its own K taps, seeing only the current and the K−1 previous tokens
// (PyTorch's Conv1d(groups = D, padding = K−1) with the last K−1 outputs dropped).
#pragma once

namespace ellm::layers {

// out (B,T,D) = bias[d] + Σ_k w[d,k] · x[b, t−(K−1)+k, d], x taken as 0 before t = 0.
// x rows have stride ldx ≥ D (x may be one half of a wider row); w (D,K); bias (D).
template <class T>
void conv1d_causal_forward(T* out, const T* x, int ldx, const T* w, const T* bias, int B, int Tn,
                           int D, int K);

// dx (B,T,D, row stride lddx) overwritten from dout (B,T,D); dw (D,K), dbias (D) accumulate.
template <class T>
void conv1d_causal_backward(T* dx, int lddx, T* dw, T* dbias, const T* dout, const T* x, int ldx,
                            const T* w, int B, int Tn, int D, int K);

}  // namespace ellm::layers
