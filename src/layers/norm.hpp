// Pre-norm layers: LayerNorm (weight + bias) and RMSNorm (weight only), over the last dimension.
#pragma once

namespace ellm::layers {

// out (N,C) = (inp - mean) * rstd * w + b; saves mean (N), rstd (N) for backward.
template <class T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* inp, const T* w, const T* b, int N, int C,
                       double eps);
// dinp (N,C) += ...; dw, db (C) += ... (nullptr: frozen, skipped)
template <class T>
void layernorm_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w,
                        const T* mean, const T* rstd, int N, int C);

// out (N,C) = inp * rstd * w with rstd = 1/sqrt(mean(inp²) + eps); saves rstd (N).
template <class T>
void rmsnorm_forward(T* out, T* rstd, const T* inp, const T* w, int N, int C, double eps);
// dinp (N,C) += ...; dw (C) += ... (nullptr: frozen, skipped)
template <class T>
void rmsnorm_backward(T* dinp, T* dw, const T* dout, const T* inp, const T* w, const T* rstd, int N,
                      int C);

}  // namespace ellm::layers
