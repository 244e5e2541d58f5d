// What a rank learns about its node once per job (topology, memory, peaks, the energy meter on
// the node's lowest rank), and how it is placed and sampled for each run.
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "efficientllm/config.hpp"
#include "metrics/energy_meter.hpp"
#include "metrics/memory.hpp"
#include "metrics/peak.hpp"
#include "metrics/sampler.hpp"
#include "mpi/comm.hpp"
#include "topology/mapping.hpp"

namespace ellm::cli {

struct NodeContext {
  explicit NodeContext(mpi::Comm node_comm) : node(std::move(node_comm)) {}

  mpi::Comm node;                   // the ranks sharing this node
  int leader = 0;                   // world rank of the node's lowest rank: the node's id
  std::filesystem::path root;       // machine state is read under it ($ELLM_SYSFS_ROOT or /)
  topology::NodeTopology topo;
  std::vector<int> initial_binding; // as the launcher left the process
  int user_blas_threads = 0;        // OPENBLAS_NUM_THREADS when set, else 0
  MemoryLimit available;            // per rank
  TheoreticalPeak theoretical;
  nlohmann::json peak;              // lowest rank only: the node's measured sgemm peak
  std::unique_ptr<energy::Meter> meter;  // lowest rank only

  bool is_leader() const { return node.rank() == 0; }
};

// Collective over `world`: the node communicator, topology, initial binding and memory limit.
NodeContext describe_node(mpi::Comm& world);
// describe_node, then every node's lowest rank calibrates the node (while the others sleep) and
// opens the energy meter.
NodeContext setup_node(mpi::Comm& world);

// The node's description for reports (topology, measured and theoretical peak) on its lowest
// rank; null on the others.
nlohmann::json node_info(const NodeContext& ctx);

// Places this rank for a run (binds it and sizes its kernel threads) and returns its placement
// with the binding check, as it goes into the rank's record.
nlohmann::json place_rank(NodeContext& ctx, MappingPolicy policy);

// The samplers of one run: none when metrics.sample_period_ms is 0.
std::unique_ptr<Sampler> start_sampling(NodeContext& ctx, const RunConfig& run);
// Stops the sampler; this rank's sampled figures for its record (null when sampling was off).
nlohmann::json sampling_record(const NodeContext& ctx, Sampler* sampler, const RunConfig& run);

}  // namespace ellm::cli
