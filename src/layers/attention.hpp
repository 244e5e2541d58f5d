// Causal grouped-query self-attention over a packed qkv buffer.
// MHA is n_kv_heads == n_heads; MQA is n_kv_heads == 1; query head h reads kv head h / (H / Hkv).
//
// The fast path is tiled with an online softmax (FlashAttention-2 schedule): memory per head is
// O(T·tile) plus one log-sum-exp per row kept for backward, never the O(T²) score matrix.
// The naive path materialises the full T×T matrix; it exists to test the fast one.
#pragma once

namespace ellm::layers {

struct AttentionShape {
  int B, T, H, Hkv, hs;  // batch, sequence, query heads, kv heads, head size
  int row() const { return (H + 2 * Hkv) * hs; }  // width of one token's [q | k | v]
  int out_row() const { return H * hs; }
};

inline constexpr int kAttentionTile = 64;

// out (B,T,H·hs), lse (B,H,T) ← qkv (B,T,(H+2Hkv)·hs)
template <class T>
void attention_forward(T* out, T* lse, const T* qkv, const AttentionShape& s,
                       int tile = kAttentionTile);
// dqkv (B,T,(H+2Hkv)·hs) += gradient from dout (B,T,H·hs); out and lse as saved by forward.
template <class T>
void attention_backward(T* dqkv, const T* dout, const T* out, const T* lse, const T* qkv,
                        const AttentionShape& s, int tile = kAttentionTile);

// References: the full score matrix per head, double accumulation.
template <class T>
void attention_forward_naive(T* out, const T* qkv, const AttentionShape& s);
template <class T>
void attention_backward_naive(T* dqkv, const T* dout, const T* qkv, const AttentionShape& s);

}  // namespace ellm::layers
