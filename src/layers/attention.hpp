// Causal grouped-query self-attention over a packed qkv buffer.
// MHA is Hkv == H; MQA is Hkv == 1; query head h reads kv head h / (H / Hkv).
// Query/key heads have dk dimensions and value heads dv (they differ in MLA, where the key carries
// a decoupled rotary part). Options: a sliding window (query t sees keys t−w+1 … t) and ALiBi
// (Press et al. 2022: score −= slope_h · (t − j)), both usable with any head layout.
//
// The fast path is tiled with an online softmax (FlashAttention-2 schedule): memory per head is
// O(T·tile) plus one log-sum-exp per row kept for backward, never the O(T²) score matrix.
// The naive path materialises every score row; it exists to test the fast one.
#pragma once

namespace ellm::layers {

struct AttentionShape {
  int B, T, H, Hkv, dk, dv;              // batch, sequence, query heads, kv heads, head sizes
  int window = 0;                        // > 0: sliding window of this many keys (itself included)
  const double* alibi_slopes = nullptr;  // (H) or nullptr: no ALiBi bias

  int row() const { return (H + Hkv) * dk + Hkv * dv; }  // one token's [q | k | v]
  int out_row() const { return H * dv; }
  int first_key(int t) const { return window > 0 && t - window + 1 > 0 ? t - window + 1 : 0; }
};

inline constexpr int kAttentionTile = 64;

// out (B,T,H·dv), lse (B,H,T) ← qkv (B,T,row)
template <class T>
void attention_forward(T* out, T* lse, const T* qkv, const AttentionShape& s,
                       int tile = kAttentionTile);
// dqkv (B,T,row) += gradient from dout (B,T,H·dv); out and lse as saved by forward.
template <class T>
void attention_backward(T* dqkv, const T* dout, const T* out, const T* lse, const T* qkv,
                        const AttentionShape& s, int tile = kAttentionTile);

// Cached decoding: one query token q (H·dk) at absolute position p attends over the keys
// first_key(p)…p of one sequence's cache, key j in row j mod cap of `cache` (rows ld apart): kv
// head g's key at column g·dk, its value at v_offset + g·dv (MLA decodes as Hkv = 1 over its
// latent row). out (H·dv) ← softmax(scale · q·k − ALiBi) · v. Only s.H, Hkv, dk, dv, window and
// alibi_slopes are read.
template <class T>
void attention_decode(T* out, const T* q, const T* cache, int ld, int cap, int v_offset, int p,
                      T scale, const AttentionShape& s);

// References: one full score row per query, double accumulation.
template <class T>
void attention_forward_naive(T* out, const T* qkv, const AttentionShape& s);
template <class T>
void attention_backward_naive(T* dqkv, const T* dout, const T* qkv, const AttentionShape& s);

// ALiBi slopes for H heads: the geometric sequence 2^(−8/H · (h+1)) of the ALiBi paper
// (for H a power of two; otherwise the paper's interleaving of the next power of two).
void alibi_slopes(int H, double* slopes);

}  // namespace ellm::layers
