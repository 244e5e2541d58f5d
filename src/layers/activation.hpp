// MLP non-linearities: GELU (tanh approximation, as GPT-2) and SwiGLU (gate ⊙ up, as LLaMA/Qwen).
#pragma once

namespace ellm::layers {

// out (n) = gelu(inp)
template <class T>
void gelu_forward(T* out, const T* inp, long n);
// dinp (n) = gelu'(inp) * dout (overwritten)
template <class T>
void gelu_backward(T* dinp, const T* inp, const T* dout, long n);

// inp (N, 2F) holds [gate | up] per row; out (N,F) = silu(gate) * up
template <class T>
void swiglu_forward(T* out, const T* inp, int N, int F);
// dinp (N, 2F) overwritten from dout (N,F)
template <class T>
void swiglu_backward(T* dinp, const T* inp, const T* dout, int N, int F);

}  // namespace ellm::layers
