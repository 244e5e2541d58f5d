// One training step (forward, backward, AdamW) of the same model fully fine-tuned, frozen but
// for its last blocks, and adapted by LoRA and DoRA (r = 8 on every linear), on one process,
// timed (docs/PERFORMANCE.md, docs/PEFT.md). A frozen weight skips its weight-gradient GEMM, so
// the LoRA step should approach the ideal ratio from the FLOPs count, printed beside it:
//   full  = 6·W + 3·A           (W: weights in GEMMs, head included; A: attention's FLOPs)
//   LoRA  = 4·W + 3·A + 6·W_a   (forward 2W + A + 2W_a; backward dX 2W, attention 2A, adapters 4W_a)
//
//   OPENBLAS_NUM_THREADS=1 build/bench/bench_peft --steps 10
#include <boost/program_options.hpp>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "metrics/flops.hpp"
#include "metrics/stats.hpp"
#include "model/gpt.hpp"
#include "train/optimizer.hpp"
#include "util/rng.hpp"

namespace po = boost::program_options;
using namespace ellm;

namespace {

struct Timing {
  double median_s = 0, median_cpu_s = 0, adapter_params = 0;
};

// This process's CPU time: on a shared machine, less disturbed by other processes than the wall
// clock (one OpenBLAS thread: the step's CPU time is its work).
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

Timing time_steps(const ModelConfig& m, int batch, int steps, int warmup) {
  GPT<float> model(m, batch);
  model.init_params(1);
  model.init_adapters();
  const TrainingConfig t;
  AdamW opt(model.param_layout(), t, {{0, model.num_grads()}});
  Rng rng(2);
  std::vector<int> tokens(std::size_t(batch) * m.seq_len), targets(tokens.size());
  std::vector<double> seconds, cpu;
  for (int s = 0; s < warmup + steps; s++) {
    for (std::size_t i = 0; i < tokens.size(); i++) {
      tokens[i] = int(rng.below(m.vocab_size));
      targets[i] = int(rng.below(m.vocab_size));
    }
    const auto start = std::chrono::steady_clock::now();
    const double cpu_start = cpu_seconds();
    model.zero_grad();
    model.forward(tokens.data(), targets.data(), batch);
    model.backward();
    opt.step(model.params(), model.grads(), 1e-3, 1.0);
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (s >= warmup) {
      seconds.push_back(dt);
      cpu.push_back(cpu_seconds() - cpu_start);
    }
  }
  Timing out;
  out.median_s = summarize(seconds).p50;
  out.median_cpu_s = summarize(cpu).p50;
  for (const TensorInfo& ti : model.param_layout().tensors()) out.adapter_params += ti.adapter ? double(ti.full_numel) : 0;
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  ModelConfig m;
  m.norm = Norm::RMSNorm;
  m.positions = Positions::RoPE;
  m.activation = Activation::SwiGLU;
  m.bias = Bias::None;
  int batch = 4, steps = 10, warmup = 2, rank = 8;
  po::options_description desc("bench_peft [options]");
  desc.add_options()("help", "show this help")("layers", po::value(&m.n_layers)->default_value(4))(
      "d-model", po::value(&m.d_model)->default_value(512))("heads", po::value(&m.n_heads)->default_value(8))(
      "d-ff", po::value(&m.d_ff)->default_value(1408))("seq-len", po::value(&m.seq_len)->default_value(256))(
      "batch", po::value(&batch)->default_value(4))("steps", po::value(&steps)->default_value(10))(
      "warmup", po::value(&warmup)->default_value(2))("rank", po::value(&rank)->default_value(8));
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "bench_peft: " << e.what() << "\n" << desc;
    return 2;
  }
  if (vm.count("help")) {
    std::cout << desc;
    return 0;
  }
  const double W = matmul_weights(m), A = model_cost(m).other_flops_per_token;
  std::printf("model: %d layers, d_model %d, d_ff %d, seq %d, batch %d; W = %.3g, A = %.3g FLOPs/token\n",
              m.n_layers, m.d_model, m.d_ff, m.seq_len, batch, W, A);
  double full_s = 0, lora_s = 0;  // CPU time
  for (FinetuneMethod method : {FinetuneMethod::Full, FinetuneMethod::Freeze, FinetuneMethod::LoRA, FinetuneMethod::DoRA}) {
    ModelConfig c = m;
    c.finetune.method = method;
    c.finetune.rank = rank;
    c.finetune.target_modules = {"all"};
    const Timing t = time_steps(c, batch, steps, warmup);
    const char* name = method == FinetuneMethod::Full ? "full" : method == FinetuneMethod::Freeze ? "freeze(2)"
                       : method == FinetuneMethod::LoRA ? "lora" : "dora";
    if (method == FinetuneMethod::Full) full_s = t.median_cpu_s;
    if (method == FinetuneMethod::LoRA) lora_s = t.median_cpu_s;
    std::printf("%-10s step %8.1f ms wall, %8.1f ms CPU (medians of %d)  CPU / full %.3f", name,
                1e3 * t.median_s, 1e3 * t.median_cpu_s, steps, t.median_cpu_s / full_s);
    if (method == FinetuneMethod::LoRA)
      std::printf("  ideal %.3f (FLOPs; W_a = %.3g)", (4 * W + 3 * A + 6 * t.adapter_params) / (6 * W + 3 * A), t.adapter_params);
    if (method == FinetuneMethod::DoRA) std::printf("  / lora %.3f", t.median_cpu_s / lora_s);
    std::printf("\n");
  }
  return 0;
}
