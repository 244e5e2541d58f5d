// One training step of a whole model, as the step tests (allocations, phase timers) run it: a GPT
// with AdamW over every parameter and one random batch of B sequences, reused by every step.
#pragma once
#include <cstddef>
#include <vector>

#include "model/gpt.hpp"
#include "train/optimizer.hpp"
#include "util/rng.hpp"

namespace ellm::testing {

struct StepRig {
  StepRig(const ModelConfig& m, int B)
      : batch(B), model(m, B), opt(model.param_layout(), TrainingConfig{}, {{0, model.param_layout().total()}}),
        tokens(std::size_t(B) * m.seq_len), targets(tokens.size()) {
    model.init_params(1);
    Rng rng(2);
    for (std::size_t i = 0; i < tokens.size(); i++)
      tokens[i] = int(rng.below(m.vocab_size)), targets[i] = int(rng.below(m.vocab_size));
  }
  // zero_grad, forward, backward, global norm, AdamW.
  void step() {
    model.zero_grad();
    model.forward(tokens.data(), targets.data(), batch);
    model.backward();
    opt.step(model.params(), model.grads(), 1e-3, clip_scale(global_norm(model.grads(), model.num_grads()), 1.0));
  }
  int batch;
  GPT<float> model;
  AdamW opt;
  std::vector<int> tokens, targets;
};

}  // namespace ellm::testing
