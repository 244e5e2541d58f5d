// Token embedding (vocabulary-parallel: a rank holds rows [vocab_begin, vocab_end) of the table)
// and additive absolute positions (learned or fixed).
#pragma once
#include <vector>

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

// Vaswani et al.'s fixed encoding (Tn,C): channel 2i is sin(t / 10000^(2i/C)), channel 2i+1 the
// cosine, scaled by `scale`. At amplitude 1 it would drown token embeddings initialised with std
// 0.02; at the embeddings' init std it starts as strong as a learned table (the fair comparison).
template <class T>
std::vector<T> sinusoid_table(int Tn, int C, double scale);

// out (rows,C) += pos[(first_row + i) mod T] for row i, pos (T,C): rows of a (B,T) batch
// flattened, starting at global row first_row (a sequence-parallel shard starts mid-batch).
template <class T>
void positions_forward(T* out, const T* pos, int rows, int first_row, int Tn, int C);
// dpos (T,C) += the rows' gradients at their positions
template <class T>
void positions_backward(T* dpos, const T* dout, int rows, int first_row, int Tn, int C);

}  // namespace ellm::layers
