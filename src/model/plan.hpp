// The whole model laid out: parameter and activation arenas and each layer's attention mixer,
// built in one pass so a block's tensors (its mixer's included) sit together.
#pragma once
#include <memory>
#include <vector>

#include "model/layout.hpp"
#include "model/mixer.hpp"

namespace ellm {

template <class T>
struct ModelPlan {
  ParamLayout params;
  ActLayout acts;  // for micro-batches of up to max_batch sequences
  std::vector<std::unique_ptr<AttentionMixer<T>>> mixers;  // one per layer
};

// tp: this rank's tensor-parallel shard; shapes in the plan are this rank's (its heads, its
// slice of d_ff and of the vocabulary).
template <class T>
ModelPlan<T> plan_model(const ModelConfig& m, int max_batch, const TensorParallel<T>& tp = {});

// The parameter layout alone (parameter counts, validation output).
ParamLayout make_param_layout(const ModelConfig& m);

}  // namespace ellm
