// Choosing the next token from a row of logits (docs/INFERENCE.md): greedy (temperature 0), or a
// draw from softmax(logits / temperature) restricted to the top-p nucleus (Holtzman et al. 2020:
// the most probable tokens whose probabilities sum to at least p), from a seeded generator, so a
// seed reproduces a generation exactly.
#pragma once
#include <cstdint>
#include <vector>

#include "util/rng.hpp"

namespace ellm {

struct SamplingConfig {
  double temperature = 0;  // 0: greedy (the first maximum); > 0: sampled
  double top_p = 1;        // in (0, 1]: the nucleus; 1: the whole vocabulary
  std::uint64_t seed = 0;
};

class TokenSampler {
 public:
  explicit TokenSampler(const SamplingConfig& c) : cfg_(c), rng_(c.seed) {}
  // The next token for logits (V).
  int next(const float* logits, int V);

 private:
  SamplingConfig cfg_;
  Rng rng_;
  std::vector<int> order_;
  std::vector<double> probs_;
};

}  // namespace ellm
