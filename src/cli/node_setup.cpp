#include "cli/node_setup.hpp"

#include <cstdlib>

#include "kernels/gemm.hpp"
#include "metrics/sysfs.hpp"
#include "util/thread_pool.hpp"

namespace ellm::cli {
namespace {

// NVML is looked up by its soname; ELLM_NVML_LIBRARY names another file (the tests' fake one).
std::string nvml_library() {
  const char* path = std::getenv("ELLM_NVML_LIBRARY");
  return path && *path ? path : "libnvidia-ml.so.1";
}

// The node's measured peak: one sgemm on all of the node's cores, run by its lowest rank while
// the other ranks sleep, so that each rank's peak is its share of one node-wide figure.
nlohmann::json calibrate(const topology::NodeTopology& topo, const std::vector<int>& restore) {
  const std::vector<int> pus = topo.all_pus();
  const int threads = int(topo.cores.size());
  const int saved_threads = kernels::blas_threads();
  topology::bind_process(pus);
  kernels::set_blas_threads(threads);
  const int n = calibration_size(threads);
  const double flops = measure_sgemm_peak(n);
  topology::bind_process(restore);
  kernels::set_blas_threads(saved_threads);
  return {{"flops_per_s", flops},
          {"threads", threads},
          {"matrix_n", n},
          {"pus", topology::list_text(pus)},
          {"method", "best of ≥ " + std::to_string(kCalibrationReps) + " repeated " + std::to_string(n) +
                         "³ sgemm (after one warm-up) over ≥ " + std::to_string(kCalibrationSeconds).substr(0, 3) +
                         " s on " + std::to_string(threads) + " BLAS threads (all the node's cores), once per job"}};
}

}  // namespace

NodeContext describe_node(mpi::Comm& world) {
  NodeContext ctx(world.split_node());
  ctx.leader = std::atoi(ctx.node.broadcast_string(std::to_string(world.rank())).c_str());
  ctx.root = sysfs::root_dir();
  ctx.topo = topology::discover();
  ctx.initial_binding = topology::current_binding();
  if (std::getenv("OPENBLAS_NUM_THREADS")) ctx.user_blas_threads = kernels::blas_threads();
  ctx.available = available_memory(ctx.root, ctx.node.size());
  ctx.theoretical = theoretical_peak(ctx.root);
  return ctx;
}

NodeContext setup_node(mpi::Comm& world) {
  NodeContext ctx = describe_node(world);
  if (ctx.is_leader()) {
    ctx.peak = calibrate(ctx.topo, ctx.initial_binding);
    ctx.meter = std::make_unique<energy::Meter>(ctx.root, nvml_library());
  }
  world.barrier_sleeping();
  return ctx;
}

nlohmann::json node_info(const NodeContext& ctx) {
  if (!ctx.is_leader()) return nullptr;
  nlohmann::json theoretical = to_json(ctx.theoretical);
  const int cores = int(ctx.topo.cores.size());
  theoretical["cores"] = cores;
  theoretical["flops_per_s"] = ctx.theoretical.flops_per_s_per_core * cores;
  theoretical["estimated"] = true;
  theoretical["model"] = "cores × FMA pipes × fp32 lanes per pipe × 2 × all-core clock";
  return {{"host", ctx.node.host()},
          {"ranks_on_node", ctx.node.size()},
          {"topology", topology::to_json(ctx.topo)},
          {"measured_peak", ctx.peak},
          {"theoretical_peak", theoretical}};
}

nlohmann::json place_rank(NodeContext& ctx, MappingPolicy policy) {
  const topology::Placement p = topology::map_rank(ctx.topo, policy, ctx.node.rank(),
                                                   ctx.node.size(), ctx.initial_binding);
  // Inherit re-applies the launcher's binding only if an earlier run of the job changed it.
  if (topology::current_binding() != p.pus) topology::bind_process(p.pus);
  const bool user = ctx.user_blas_threads > 0;
  kernels::set_blas_threads(user ? ctx.user_blas_threads : p.blas_threads);
  // The rank's own kernels (attention's tiles, the quantized matmuls) run on as many threads as
  // OpenBLAS: the two take turns on the rank's cores, never both at once.
  rank_pool().set_threads(kernels::blas_threads());
  const topology::ThreadCheck check = topology::check_threads(p.pus);
  nlohmann::json j = topology::to_json(p, ctx.topo);
  j["blas_threads"] = kernels::blas_threads();
  j["kernel_threads"] = rank_pool().threads();
  j["blas_threads_source"] = user ? "OPENBLAS_NUM_THREADS"
                             : p.binding == "none" ? "the node's cores ÷ the ranks on the node (unbound)"
                                                   : "the cores in the rank's CPU set";
  j["threads_bound"] = {{"inside", check.inside}, {"total", check.total}};
  j["core_indexes"] = p.cores;
  return j;
}

std::unique_ptr<Sampler> start_sampling(NodeContext& ctx, const RunConfig& run) {
  if (run.metrics.sample_period_ms == 0) return nullptr;
  if (ctx.meter) {
    ctx.meter->set_model(energy::power_model(ctx.topo.cpu_model, int(ctx.topo.cores.size()),
                                             run.metrics.p_idle_w, run.metrics.p_max_w));
  }
  return std::make_unique<Sampler>(run.metrics.sample_period_ms / 1000.0, ctx.meter.get());
}

nlohmann::json sampling_record(const NodeContext& ctx, Sampler* sampler, const RunConfig& run) {
  if (sampler == nullptr) return nullptr;
  Sampler::Result r = sampler->stop();
  const MemorySummary m = summarize_memory(r.series, ctx.available.bytes);
  const RankSeries& s = r.series;
  return {{"period_s", run.metrics.sample_period_ms / 1000.0},
          {"samples", s.t_s.size()},
          {"available_bytes", ctx.available.bytes},
          {"available_source", ctx.available.source},
          {"amu", ctx.available.bytes > 0 ? nlohmann::json(m.amu) : nlohmann::json(nullptr)},
          {"rss_mean_bytes", m.rss_mean_bytes},
          {"rss_peak_bytes", m.rss_peak_bytes},
          {"tracked_peak_bytes", m.tracked_peak_bytes},
          {"busy_cores", busy_cores(s)},
          {"series", {{"t_s", s.t_s}, {"rss_bytes", s.rss_bytes}, {"tracked_bytes", s.tracked_bytes}, {"cpu_s", s.cpu_s}}},
          {"energy", r.energy}};
}

}  // namespace ellm::cli
