// Rotary position embedding (Su et al. 2021), "rotate-half" pairing as in GPT-NeoX and LLaMA:
// dimension i of a head is rotated with dimension i + hs/2 by angle t · base^(-2i/hs).
#pragma once

namespace ellm::layers {

// qkv (B,T,(H+2·Hkv)·hs) rows hold [q heads | k heads | v heads]; q and k are rotated in place.
template <class T>
void rope_forward(T* qkv, int B, int Tn, int H, int Hkv, int hs, double base);
// The rotation is orthogonal, so its backward rotates dqkv in place by the opposite angle.
template <class T>
void rope_backward(T* dqkv, int B, int Tn, int H, int Hkv, int hs, double base);

}  // namespace ellm::layers
