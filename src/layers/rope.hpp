// Rotary position embedding (Su et al. 2021), "rotate-half" pairing as in GPT-NeoX and LLaMA:
// of each head's first `rot` dimensions (rot = hs: all; GPT-NeoX's partial rotary: fewer),
// dimension i is rotated with dimension i + rot/2 by angle t · base^(-2i/rot); the remaining
// hs − rot dimensions pass unchanged.
#pragma once

namespace ellm::layers {

// x (B,T,row): the first n_heads heads of size hs of every row are rotated in place (for a packed
// [q | k | v] buffer: n_heads = H + Hkv, so q and k turn and v does not). Token t of each
// sequence sits at absolute position pos0 + t (pos0 > 0: a chunk decoded after a cache).
template <class T>
void rope_forward(T* x, int B, int Tn, int row, int n_heads, int hs, int rot, double base,
                  int pos0 = 0);
// The rotation is orthogonal, so its backward rotates dx in place by the opposite angle.
template <class T>
void rope_backward(T* dx, int B, int Tn, int row, int n_heads, int hs, int rot, double base);

}  // namespace ellm::layers
