// Attention over explicit key sets: query t attends to the keys listed for it (a few half-open
// ranges of key rows), not to a causal prefix. NSA's compression branch (a prefix of the
// compressed tokens) and its selection branch (the raw tokens of the chosen blocks) are both this.
// Exact softmax per query with naive loops: the work is O(listed keys · hs) per query and nothing
// of size T×T is built. Forward keeps one log-sum-exp per query for backward, as the dense kernel.
// Keys and values share the head size hs; query head h reads kv head h / (H / Hkv), and all heads
// of a kv group share the group's key set (NSA: one selection per GQA group).
#pragma once

namespace ellm::layers {

// Key rows [lo, hi) of one sequence; empty when lo ≥ hi.
struct KeyRange {
  int lo = 0, hi = 0;
};

struct SparseShape {
  int B, T, Tk, H, Hkv, hs;    // batch, queries and keys per sequence, query heads, kv heads, head size
  int q_row, kv_row, out_row;  // elements from one row to the next: of q, of k and v, of out
  int R;                       // key ranges per (sequence, query, kv head)

  const KeyRange* ranges_of(const KeyRange* ranges, int b, int t, int g) const {
    return ranges + ((long(b) * T + t) * Hkv + g) * R;
  }
};

// out (B,T,out_row) (head h at column h·hs), lse (B,H,T)
//   ← q (B,T,q_row), k, v (B,Tk,kv_row) (kv head g at column g·hs), ranges (B,T,Hkv,R).
// A query with no keys gets out = 0 and lse = −∞.
template <class T>
void sparse_attention_forward(T* out, T* lse, const T* q, const T* k, const T* v,
                              const KeyRange* ranges, const SparseShape& s);

// dq (B,T,q_row), dk, dv (B,Tk,kv_row) += gradients from dout (B,T,out_row); out and lse as
// forward saved them.
template <class T>
void sparse_attention_backward(T* dq, T* dk, T* dv, const T* dout, const T* out, const T* lse,
                               const T* q, const T* k, const T* v, const KeyRange* ranges,
                               const SparseShape& s);

// p (Tk) += the attention probabilities of query t of head h in sequence b, indexed by key row
// (recomputed from forward's lse): what NSA ranks its selection blocks by.
template <class T>
void sparse_attention_add_probabilities(T* p, const T* lse, const T* q, const T* k,
                                        const KeyRange* ranges, const SparseShape& s, int b, int t,
                                        int h);

}  // namespace ellm::layers
