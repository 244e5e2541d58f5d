// Softmax + cross-entropy over the vocabulary, fused: the logits buffer becomes the probabilities.
// Vocabulary-parallel (Megatron): a rank holds the logits of vocabulary [vocab_begin, +V_local);
// the row maxima are max-reduced and the exp-sums and target logits sum-reduced across the shards
// (RowReduce), so full logits are never gathered. With one shard the reductions are identity.
#pragma once
#include <functional>

namespace ellm::layers {

template <class T>
using RowReduce = std::function<void(T* values, int n)>;  // in place, across vocabulary shards

// A target below 0 is not predicted (instruction data's prompt tokens): its row adds nothing to the
// loss and gets a zero gradient.
constexpr int kIgnoredTarget = -1;

// logits (N,V_local) are replaced by this shard's softmax probabilities; losses (N) =
// −log p[target], 0 for ignored targets. rows (3N) is workspace. Returns the SUM of the losses:
// the caller chooses the divisor (the counted targets of the global batch, docs/DATA.md).
template <class T>
double crossentropy_forward(T* logits_to_probs, T* losses, const int* targets, int N, int V_local,
                            int vocab_begin, T* rows, const RowReduce<T>& max = {},
                            const RowReduce<T>& sum = {});
// probs (N,V_local) are replaced by dlogits = (probs − onehot(target)) / divisor, the gradient of
// Σ losses / divisor; rows of ignored targets become 0.
template <class T>
void crossentropy_backward(T* probs_to_dlogits, const int* targets, int N, int V_local,
                           int vocab_begin, double divisor);

}  // namespace ellm::layers
