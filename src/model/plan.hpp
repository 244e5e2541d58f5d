// The whole model laid out: the parameter and activation arenas and every block's modules, built
// in one pass (each module declares its tensors as it is made, so a block's tensors sit
// together). Declaring allocates no arena: the layout alone gives parameter counts and
// validation output; GPT allocates the arenas from it.
#pragma once
#include <memory>
#include <vector>

#include "model/block.hpp"

namespace ellm {

template <class T>
struct ModelPlan {
  ArenaLayout params;
  ArenaLayout acts;  // for micro-batches of up to max_batch sequences
  std::unique_ptr<ResidualStream<T>> stream;  // the blocks refer to it
  std::size_t wte = kAbsent;  // (V, C) this rank's vocabulary rows; the LM head when tied
  std::size_t lm_head = kAbsent;  // (V, C) the untied LM head (tie_embeddings false), like wte
  std::size_t head() const { return lm_head == kAbsent ? wte : lm_head; }
  std::size_t wpe = kAbsent;  // (T, C) learned positions only
  std::vector<std::unique_ptr<Block<T>>> blocks;
  NormLayer<T> lnf;
  std::size_t encoded = 0;   // (R,C) the embeddings, the first block's input
  std::size_t lnf_full = 0;  // (N,C) the head's input: lnf gathered (or lnf itself)
  std::size_t logits = 0;    // (N, V/tp): logits → probabilities → dlogits
  std::size_t losses = 0;    // (N)
};

// tp: this rank's tensor-parallel shard; shapes in the plan are this rank's.
template <class T>
ModelPlan<T> plan_model(const ModelConfig& m, int max_batch, const TensorParallel<T>& tp = {});

// The parameter layout alone (parameter counts, validation output).
ArenaLayout make_param_layout(const ModelConfig& m);

}  // namespace ellm
