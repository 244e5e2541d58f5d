// Token embedding plus (optionally) learned absolute positions.
#pragma once

namespace ellm::layers {

// out (B,T,C) = wte[tokens[b,t]] + wpe[t]; wpe (T_max,C) may be nullptr (RoPE models).
template <class T>
void embedding_forward(T* out, const int* tokens, const T* wte, const T* wpe, int B, int Tn, int C);
// dwte, dwpe += scatter of dout (B,T,C)
template <class T>
void embedding_backward(T* dwte, T* dwpe, const T* dout, const int* tokens, int B, int Tn, int C);

}  // namespace ellm::layers
