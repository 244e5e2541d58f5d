// Softmax + cross-entropy over the vocabulary, fused: the logits buffer becomes the probabilities.
#pragma once

namespace ellm::layers {

// logits (N,V) are replaced by softmax probabilities; losses (N) = -log p[target]. Returns the mean.
template <class T>
double crossentropy_forward(T* logits_to_probs, T* losses, const int* targets, int N, int V);
// probs (N,V) are replaced by dlogits = (probs - onehot(target)) * dloss, dloss = 1/N (mean loss).
template <class T>
void crossentropy_backward(T* probs_to_dlogits, const int* targets, int N, int V);

}  // namespace ellm::layers
