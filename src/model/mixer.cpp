#include "model/mixer.hpp"

#include <algorithm>
#include <stdexcept>

namespace ellm {

template <class T>
std::unique_ptr<AttentionMixer<T>> make_mixer(const ModelConfig& m, int layer, int max_batch,
                                              ArenaLayout& params, ArenaLayout& acts,
                                              const TensorParallel<T>& tp) {
  if (tp.shard.size > 1 && m.attention != AttentionKind::GQA) {
    throw std::invalid_argument("tensor parallelism supports attention \"gqa\" only");
  }
  switch (m.attention) {
    case AttentionKind::MLA:
      return make_mla_mixer<T>(m, layer, max_batch, params, acts);
    case AttentionKind::NSA:
      return make_nsa_mixer<T>(m, layer, max_batch, params, acts);
    case AttentionKind::GQA:
      break;
  }
  return make_gqa_mixer<T>(m, layer, max_batch, params, acts, tp);
}
template std::unique_ptr<AttentionMixer<float>> make_mixer<float>(const ModelConfig&, int, int,
                                                                  ArenaLayout&, ArenaLayout&,
                                                                  const TensorParallel<float>&);
template std::unique_ptr<AttentionMixer<double>> make_mixer<double>(const ModelConfig&, int, int,
                                                                    ArenaLayout&, ArenaLayout&,
                                                                    const TensorParallel<double>&);

AttentionCost attention_cost(const ModelConfig& m) {
  switch (m.attention) {
    case AttentionKind::MLA:
      return mla_cost(m);
    case AttentionKind::NSA:
      return nsa_cost(m);
    case AttentionKind::GQA:
      break;
  }
  return gqa_cost(m);
}

double mean_visible_keys(int T, int window) {
  double total = 0;
  for (int t = 0; t < T; t++) total += window > 0 ? std::min(t + 1, window) : t + 1;
  return total / T;
}

}  // namespace ellm
