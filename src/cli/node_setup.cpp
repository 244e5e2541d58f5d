#include "cli/node_setup.hpp"

#include <chrono>
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
// the other ranks sleep, so that each rank's peak is its share of one node-wide figure. Its time
// and energy are the job's set-up, outside every run's windows (docs/METRICS.md, "Windows").
nlohmann::json calibrate(const topology::NodeTopology& topo, const std::vector<int>& restore, energy::Meter& meter) {
  const std::vector<int> pus = topo.all_pus();
  const int threads = int(topo.cores.size());
  const int saved_threads = kernels::kernel_threads();
  topology::bind_process(pus);
  kernels::set_kernel_threads(threads);
  const int n = calibration_size(threads);
  meter.set_model(energy::power_model(topo.cpu_model, threads, 0, 0));  // the defaults: no run's overrides yet
  meter.begin();
  const auto start = std::chrono::steady_clock::now();
  const double flops = measure_sgemm_peak(n);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const nlohmann::json energy = meter.finish(seconds, seconds);
  topology::bind_process(restore);
  kernels::set_kernel_threads(saved_threads);
  return {{"flops_per_s", flops},
          {"threads", threads},
          {"matrix_n", n},
          {"seconds", seconds},
          {"joules", energy["joules"]},
          {"joules_estimated", energy["estimated"]},
          {"pus", topology::list_text(pus)},
          {"method", "best of ≥ " + std::to_string(kCalibrationReps) + " repeated " + std::to_string(n) +
                         "³ sgemm (after one warm-up) over ≥ " + std::to_string(kCalibrationSeconds).substr(0, 3) +
                         " s on " + std::to_string(threads) + " threads (all the node's cores), once per job"}};
}

nlohmann::json per_second(double amount, double seconds) {
  return seconds > 0 ? nlohmann::json(amount / seconds) : nlohmann::json(nullptr);
}

// The rank's figures per window: time, mean resident set, AMU and busy cores.
nlohmann::json rank_windows(const std::array<WindowFigures, kWindows>& w, std::uint64_t available) {
  nlohmann::json out = nlohmann::json::object();
  for (int i = 0; i < kWindows; i++) {
    const nlohmann::json rss = per_second(w[i].rss_time, w[i].seconds);
    out[kWindowNames[i]] = {{"seconds", w[i].seconds},
                            {"rss_mean_bytes", rss},
                            {"amu", rss.is_null() || available == 0 ? nlohmann::json(nullptr) : nlohmann::json(rss.get<double>() / double(available))},
                            {"busy_cores", per_second(w[i].cpu_s, w[i].seconds)}};
  }
  return out;
}

// The node's energy record with its headline figures (seconds, joules, aec_w) over the steps
// window, the whole sampled run beside them and every window's share.
nlohmann::json energy_by_window(nlohmann::json e, const std::array<WindowFigures, kWindows>& w) {
  if (e.is_null()) return e;
  const bool measured = !e["joules"].is_null();
  const auto joules = [&](double j) { return measured ? nlohmann::json(j) : nlohmann::json(nullptr); };
  nlohmann::json windows = nlohmann::json::object();
  for (int i = 0; i < kWindows; i++) {
    windows[kWindowNames[i]] = {{"seconds", w[i].seconds},
                                {"joules", joules(w[i].joules)},
                                {"aec_w", measured ? per_second(w[i].joules, w[i].seconds) : nlohmann::json(nullptr)}};
  }
  e["whole_run"] = {{"seconds", e["seconds"]}, {"joules", e["joules"]}, {"aec_w", e["aec_w"]}};
  e["windows"] = windows;
  e["window"] = "steps";
  const nlohmann::json steps = windows["steps"];
  e["seconds"] = steps["seconds"];
  e["joules"] = steps["joules"];
  e["aec_w"] = steps["aec_w"];
  return e;
}

}  // namespace

NodeContext describe_node(mpi::Comm& world) {
  NodeContext ctx(world.split_node());
  ctx.leader = std::atoi(ctx.node.broadcast_string(std::to_string(world.rank())).c_str());
  ctx.root = sysfs::root_dir();
  ctx.topo = topology::discover();
  ctx.initial_binding = topology::current_binding();
  ctx.user_blas_threads = kernels::environment_kernel_threads();
  ctx.available = available_memory(ctx.root, ctx.node.size());
  ctx.theoretical = theoretical_peak(ctx.root);
  return ctx;
}

NodeContext setup_node(mpi::Comm& world) {
  NodeContext ctx = describe_node(world);
  if (ctx.is_leader()) {
    ctx.meter = std::make_unique<energy::Meter>(ctx.root, nvml_library(),
                                                energy::Devices{ctx.topo.packages, int(ctx.topo.gpus.size())});
    ctx.peak = calibrate(ctx.topo, ctx.initial_binding, *ctx.meter);
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
  // Every kernel of the rank, the GEMMs included, runs on its pool (kernels/gemm.hpp).
  kernels::set_kernel_threads(user ? ctx.user_blas_threads : p.blas_threads);
  const topology::ThreadCheck check = topology::check_threads(p.pus);
  nlohmann::json j = topology::to_json(p, ctx.topo);
  j["blas_threads"] = kernels::kernel_threads();  // the GEMMs' threads: the pool's, OpenBLAS single-threaded inside
  j["kernel_threads"] = kernels::kernel_threads();
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
  const MemorySummary m = summarize_memory(r.series, ctx.available.bytes);  // the peaks: whole run
  const RankSeries& s = r.series;
  const std::array<WindowFigures, kWindows> w = summarize_windows(s);
  nlohmann::json windows = rank_windows(w, ctx.available.bytes);
  const nlohmann::json& steps = windows["steps"];  // the headline figures' window
  return {{"period_s", run.metrics.sample_period_ms / 1000.0},
          {"samples", s.t_s.size()},
          {"available_bytes", ctx.available.bytes},
          {"available_source", ctx.available.source},
          {"window", "steps"},
          {"amu", steps["amu"]},
          {"rss_mean_bytes", steps["rss_mean_bytes"]},
          {"busy_cores", steps["busy_cores"]},
          {"rss_peak_bytes", m.rss_peak_bytes},
          {"tracked_peak_bytes", m.tracked_peak_bytes},
          {"windows", windows},
          {"series", {{"t_s", s.t_s}, {"rss_bytes", s.rss_bytes}, {"tracked_bytes", s.tracked_bytes}, {"cpu_s", s.cpu_s}}},
          {"energy", energy_by_window(r.energy, w)}};
}

}  // namespace ellm::cli
