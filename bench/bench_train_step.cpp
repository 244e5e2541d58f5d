// One training step of the GPT (forward, backward, clip, AdamW) on one process, timed: the C++
// side of the PyTorch comparison (bench/pytorch_gpt.py takes the same flags and prints the same
// JSON). Data-parallel steps are measured with the real binary (bench/compare_mpi.sh).
// --phases also splits the step by phase (util/phases.hpp: GEMM, attention, elementwise, loss,
// optimizer, communication, the rest), mean ms per timed step.
//
//   OPENBLAS_NUM_THREADS=2 build/bench/bench_train_step --steps 10 --phases --json
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/gemm.hpp"
#include "metrics/flops.hpp"
#include "metrics/peak.hpp"
#include "metrics/stats.hpp"
#include "model/gpt.hpp"
#include "train/optimizer.hpp"
#include "util/phases.hpp"
#include "util/rng.hpp"
#include "util/thread_pool.hpp"

namespace po = boost::program_options;
using namespace ellm;

int main(int argc, char** argv) {
  ModelConfig m;
  TrainingConfig t;
  int batch = 8, steps = 10, warmup = 3;
  bool json_out = false, measure_peak = false, phases = false;
  po::options_description desc("bench_train_step [options]");
  desc.add_options()("help", "show this help")("layers", po::value(&m.n_layers)->default_value(6))(
      "d-model", po::value(&m.d_model)->default_value(384))("heads", po::value(&m.n_heads)->default_value(6))(
      "d-ff", po::value(&m.d_ff)->default_value(0), "0: 4 × d-model (as bench/pytorch_gpt.py)")("seq-len", po::value(&m.seq_len)->default_value(256))(
      "batch", po::value(&batch)->default_value(8))("steps", po::value(&steps)->default_value(10))(
      "warmup", po::value(&warmup)->default_value(3))("json", po::bool_switch(&json_out))(
      "peak", po::bool_switch(&measure_peak), "also measure the sgemm peak and report MFU")(
      "phases", po::bool_switch(&phases), "also split the step by phase (GEMM, attention, …)");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "bench_train_step: " << e.what() << "\n" << desc;
    return 2;
  }
  if (vm.count("help")) {
    std::cout << desc;
    return 0;
  }

  if (m.d_ff == 0) m.d_ff = 4 * m.d_model;
  // As the binary does (cli/node_setup.cpp): OPENBLAS_NUM_THREADS sizes the rank's pool, which
  // runs every kernel, the GEMMs included; unset, the CPUs this process may run on.
  kernels::set_kernel_threads(kernels::default_kernel_threads());
  GPT<float> model(m, batch);
  model.init_params(1);
  AdamW opt(model.param_layout(), t, {{0, model.num_params()}});
  Rng rng(2);
  std::vector<int> tokens(std::size_t(batch) * m.seq_len), targets(tokens.size());
  std::vector<double> seconds;
  double loss_first = 0, loss_last = 0;
  PhaseSeconds phase_sum;  // over the timed steps
  if (phases) phase_clock_start();
  for (int s = 0; s < warmup + steps; s++) {
    for (std::size_t i = 0; i < tokens.size(); i++) {  // random bytes, outside the timed region
      tokens[i] = int(rng.below(256));
      targets[i] = int(rng.below(256));
    }
    const PhaseSeconds p0 = phase_clock_read();
    const auto t0 = std::chrono::steady_clock::now();
    model.zero_grad();
    const double loss = model.forward(tokens.data(), targets.data(), batch);
    model.backward();
    const double norm = global_norm(model.grads(), model.num_params());
    opt.step(model.params(), model.grads(), 1e-3, clip_scale(norm, 1.0));
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const PhaseSeconds dp = phase_clock_read() - p0;
    if (s >= warmup) {
      seconds.push_back(dt);
      for (int i = 0; i < kPhases; i++) phase_sum.seconds[i] += dp.seconds[i];
    }
    if (s == 0) loss_first = loss;
    loss_last = loss;
  }
  phase_clock_stop();
  const Summary st = summarize(seconds);
  const double tokens_per_s = double(batch) * m.seq_len / st.mean;
  const double flops_per_s = tokens_per_s * training_flops_per_token(m);
  nlohmann::json out = {{"peer", "efficientllm"},
                        {"blas_threads", kernels::kernel_threads()},
                        {"pool_threads", rank_pool().threads()},
                        {"params", model.num_params()},
                        {"ms_per_step", {{"mean", st.mean * 1e3}, {"min", st.min * 1e3},
                                         {"max", st.max * 1e3}, {"p50", st.p50 * 1e3}}},
                        {"tokens_per_s", tokens_per_s},
                        {"model_flops_per_s", flops_per_s},
                        {"loss_first", loss_first},
                        {"loss_last", loss_last}};
  if (measure_peak) {
    const double peak = measure_sgemm_peak(2048, 1.0);
    out["sgemm_peak_flops_per_s"] = peak;
    out["gemm_relative_efficiency"] = flops_per_s / peak;
  }
  std::printf("efficientllm: %.1f ms/step (p50 %.1f), %.0f tokens/s, %.1f GFLOP/s, %zu params\n",
              st.mean * 1e3, st.p50 * 1e3, tokens_per_s, flops_per_s / 1e9, model.num_params());
  if (phases) {
    nlohmann::json ms;
    for (int i = 0; i < kPhases; i++) {
      const double x = phase_sum.seconds[i] * 1e3 / steps;
      ms[phase_name(Phase(i))] = x;
      std::printf("  %-13s %8.1f ms/step %5.1f %%\n", phase_name(Phase(i)), x, 100 * x / (st.mean * 1e3));
    }
    out["phases_ms_per_step"] = ms;
  }
  if (json_out) std::printf("%s\n", out.dump().c_str());
  return 0;
}
