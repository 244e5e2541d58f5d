// Token embedding (vocabulary-parallel: a rank holds rows [vocab_begin, vocab_end) of the table)
// and additive absolute positions (learned or fixed).
#pragma once

namespace ellm::layers {

// out (B,T,C) = wte[tokens[b,t] − vocab_begin] for tokens this rank holds, 0 for the others
// (the tensor-parallel all-reduce then assembles the full embedding).
template <class T>
void embedding_forward(T* out, const int* tokens, const T* wte, int B, int Tn, int C,
                       int vocab_begin, int vocab_end);
// dwte (rows this rank holds) += scatter of dout (B,T,C)
template <class T>
void embedding_backward(T* dwte, const T* dout, const int* tokens, int B, int Tn, int C,
                        int vocab_begin, int vocab_end);

// out (B,T,C) += pos[t] with pos (T,C)
template <class T>
void positions_forward(T* out, const T* pos, int B, int Tn, int C);
// dpos (T,C) += Σ_b dout[b,t]
template <class T>
void positions_backward(T* dpos, const T* dout, int B, int Tn, int C);

}  // namespace ellm::layers
