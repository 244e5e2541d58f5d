// The routing of a model's mixture-of-experts layers over a run, for the report: per step the
// objective's routing terms (load balancing and z-loss summed over the layers, mean over the
// data-parallel replicas) and the dropped assignments (summed over replicas), and per layer the
// assignments routed to each expert per step, before any capacity drop (summed over replicas).
// Empty for a dense model.
#pragma once
#include <vector>

#include <nlohmann/json.hpp>

#include "model/gpt.hpp"
#include "mpi/comm.hpp"

namespace ellm {

class RoutingLog {
 public:
  explicit RoutingLog(const GPT<float>& model);
  bool empty() const { return layers_.empty(); }
  // After a forward: this step's figures over the replicas (one all-reduce over dp).
  void record(const GPT<float>& model, mpi::Comm& dp);
  // null for a dense model; else the curves and, per routed layer, the expert load.
  nlohmann::json report() const;

 private:
  std::vector<int> layers_;  // the routed layers
  std::vector<int> experts_; // their expert counts
  std::vector<double> aux_, z_, dropped_;
  std::vector<std::vector<std::vector<double>>> load_;  // [layer][step][expert]
};

}  // namespace ellm
