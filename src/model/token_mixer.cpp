#include "model/token_mixer.hpp"

#include <algorithm>

namespace ellm {

template <class T>
std::unique_ptr<TokenMixer<T>> make_token_mixer(const ModelConfig& m, int max_batch,
                                                const Declarer& d, const TensorParallel<T>& tp) {
  switch (m.token_mixer) {
    case TokenMixerKind::Mamba: return make_mamba_mixer<T>(m, max_batch, d, tp);
    case TokenMixerKind::RWKV6: return make_rwkv6_mixer<T>(m, max_batch, d, tp);
    case TokenMixerKind::Attention: break;
  }
  switch (m.attention) {
    case AttentionKind::MLA:
      return make_mla_mixer<T>(m, max_batch, d, tp);
    case AttentionKind::NSA:
      return make_nsa_mixer<T>(m, max_batch, d, tp);
    case AttentionKind::GQA:
      break;
  }
  return make_gqa_mixer<T>(m, max_batch, d, tp);
}
template std::unique_ptr<TokenMixer<float>> make_token_mixer<float>(const ModelConfig&, int,
                                                                    const Declarer&,
                                                                    const TensorParallel<float>&);
template std::unique_ptr<TokenMixer<double>> make_token_mixer<double>(
    const ModelConfig&, int, const Declarer&, const TensorParallel<double>&);

ModuleCost token_mixer_cost(const ModelConfig& m) {
  if (m.token_mixer == TokenMixerKind::Mamba) return mamba_cost(m);
  if (m.token_mixer == TokenMixerKind::RWKV6) return rwkv6_cost(m);
  ModuleCost c;
  switch (m.attention) {
    case AttentionKind::MLA:
      c = mla_cost(m);
      break;
    case AttentionKind::NSA:
      c = nsa_cost(m);
      break;
    case AttentionKind::GQA:
      c = gqa_cost(m);
      break;
  }
  c.matmul_weights += double(m.d_model) * m.n_heads * m.head_dim();  // every variant's width is H·hs
  return c;
}

double mean_visible_keys(int T, int window) {
  double total = 0;
  for (int t = 0; t < T; t++) total += window > 0 ? std::min(t + 1, window) : t + 1;
  return total / T;
}

}  // namespace ellm
