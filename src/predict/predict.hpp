// Step time and parallel efficiency of a dp × tp × ep layout on N ranks, from a measured
// single-rank run (its per-phase compute, util/phases.hpp) and the α–β network model
// (docs/SCALING.md lists every assumption).
#pragma once
#include <array>
#include <string>
#include <vector>

#include <efficientllm/config.hpp>
#include <nlohmann/json.hpp>

#include "predict/network.hpp"
#include "predict/traffic.hpp"

namespace ellm::predict {

// One run of a single-rank report: mean seconds per step by phase, at `rows` sequences per step.
struct Measured {
  double gemm = 0, attention = 0, elementwise = 0, loss = 0, optimizer = 0, other = 0;
  int rows = 0;
  double work() const { return gemm + attention + elementwise + loss; }  // scales with rows / tp
};
// Run `run_index` of a report.json written by `efficientllm run` on one rank; throws
// std::runtime_error "FILE: /pointer: ..." when it is not one.
Measured read_measured(const nlohmann::json& report, int run_index, const std::string& file);

struct Options {
  int ranks_per_node = 2;
  double cores = 0;     // > 0: all ranks share this many cores (one-machine validation)
  bool overlap = false; // hide the dp all-reduce behind backward (≈ 2/3 of the work phases)
  bool strong = false;  // efficiency against one rank doing the global batch (else one replica's rows)
};

struct Prediction {
  Layout layout;
  int rows_per_replica = 0;
  // dp_s: the dp and expert-dp groups' collectives and the world's stop flags
  double compute_s = 0, tp_s = 0, dp_s = 0, ep_s = 0, hidden_s = 0, step_s = 0;
  // one rank's predicted time for the same work over (ranks sharing it × step_s): ≤ 1
  double efficiency = 0;
};

Prediction predict_step(const RunConfig& run, const Measured& m, const Network& net, const Layout& l,
                        int rows_per_replica, const Options& o);

// Layouts dp × tp × ep for 1, 2, 4, … up to max_ranks (and max_ranks itself) where tp and ep fit;
// rows_per_replica fixed (weak scaling) or global_batch / dp (strong, global_batch > 0: only
// layouts where dp divides it).
std::vector<Prediction> predict_curve(const RunConfig& run, const Measured& m, const Network& net,
                                      int tp, int ep, int max_ranks, int global_batch, const Options& o);

nlohmann::json prediction_json(const Prediction& p);

}  // namespace ellm::predict
