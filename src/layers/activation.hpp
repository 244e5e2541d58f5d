// MLP non-linearities: GELU (tanh approximation, as GPT-2), exact GELU (x·Φ(x) with erf, as
// GPT-NeoX/Pythia and PyTorch's default) and SwiGLU (gate ⊙ up, as LLaMA/Qwen).
#pragma once

namespace ellm::layers {

// out (n) = gelu(inp)
template <class T>
void gelu_forward(T* out, const T* inp, long n);
// dinp (n) = gelu'(inp) * dout (overwritten)
template <class T>
void gelu_backward(T* dinp, const T* inp, const T* dout, long n);

// out (n) = x·Φ(x) = 0.5·x·(1 + erf(x/√2))
template <class T>
void gelu_exact_forward(T* out, const T* inp, long n);
// dinp (n) = (Φ(x) + x·φ(x)) * dout (overwritten)
template <class T>
void gelu_exact_backward(T* dinp, const T* inp, const T* dout, long n);

// inp (N, 2F) holds [gate | up] per row; out (N,F) = silu(gate) * up
template <class T>
void swiglu_forward(T* out, const T* inp, int N, int F);
// dinp (N, 2F) overwritten from dout (N,F)
template <class T>
void swiglu_backward(T* dinp, const T* inp, const T* dout, int N, int F);

}  // namespace ellm::layers
