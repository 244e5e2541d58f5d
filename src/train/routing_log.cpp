#include "train/routing_log.hpp"

#include <algorithm>
#include <numeric>

namespace ellm {

RoutingLog::RoutingLog(const GPT<float>& model) {
  for (int l = 0; l < model.config().n_layers; l++) {
    if (model.config().layer(l).mlp != ChannelMixerKind::MoE) continue;
    layers_.push_back(l);
    experts_.push_back(model.config().layer(l).moe_experts);
  }
  load_.resize(layers_.size());
}

void RoutingLog::record(const GPT<float>& model, mpi::Comm& dp) {
  if (empty()) return;
  // [aux, z, dropped, the layers' loads back to back]: one all-reduce for the step
  std::vector<double> v(3, 0.0);
  for (int l : layers_) {
    const RoutingStats& r = *model.routing(l);
    v[0] += r.aux_loss;
    v[1] += r.z_loss;
    v[2] += r.dropped;
    v.insert(v.end(), r.expert_tokens.begin(), r.expert_tokens.end());
  }
  if (dp.size() > 1) dp.allreduce_sum(v.data(), v.size(), v.size() * sizeof(double));
  aux_.push_back(v[0] / dp.size());
  z_.push_back(v[1] / dp.size());
  dropped_.push_back(v[2]);
  auto next = v.begin() + 3;
  for (std::size_t i = 0; i < layers_.size(); i++) {
    load_[i].emplace_back(next, next + experts_[i]);
    next += experts_[i];
  }
}

nlohmann::json RoutingLog::report() const {
  if (empty()) return nullptr;
  nlohmann::json layers = nlohmann::json::array();
  for (std::size_t i = 0; i < layers_.size(); i++) {
    const auto& steps = load_[i];
    std::vector<double> mean(experts_[i], 0.0), imbalance;
    for (const auto& step : steps) {
      const double total = std::accumulate(step.begin(), step.end(), 0.0);
      for (int e = 0; e < experts_[i]; e++) mean[e] += step[e] / steps.size();
      imbalance.push_back(total > 0 ? *std::max_element(step.begin(), step.end()) / (total / experts_[i]) : 0.0);
    }
    layers.push_back(
        {{"layer", layers_[i]},
         {"experts", experts_[i]},
         {"tokens_per_expert_per_step", mean},
         {"imbalance_mean", std::accumulate(imbalance.begin(), imbalance.end(), 0.0) / imbalance.size()},
         {"imbalance_max", *std::max_element(imbalance.begin(), imbalance.end())}});
  }
  return {{"aux_loss_per_step", aux_},
          {"z_loss_per_step", z_},
          {"dropped_per_step", dropped_},
          {"layers", layers},
          {"note", "aux and z: the routing terms of the objective, summed over the layers, mean over "
                   "replicas (never in the loss or perplexity); tokens and dropped: assignments "
                   "(token × top-k slot) summed over replicas; imbalance: max ÷ mean of a step's loads"}};
}

}  // namespace ellm
