// Quality of a model served at a lower bit width against the same model in fp32, by llama.cpp's
// perplexity-tool methodology (docs/INFERENCE.md): the token stream is cut into windows of the
// context's length, each window is prefilled from empty caches in one chunk, and only the second
// half of its positions is scored (each prediction sees at least context/2 tokens). Over the
// scored positions: the perplexity of each, the mean KL divergence KL(P_fp32 ‖ P) of the
// next-token distributions, and how often both put the same token first (llama.cpp's "same top").
#pragma once
#include <vector>

#include "infer/decoder.hpp"

namespace ellm {

struct Quality {
  double ppl_reference = 0;  // exp(mean negative log-likelihood), reference weights
  double ppl = 0;            // the same with the candidate weights
  double kl = 0;             // mean over scored positions of KL(P_reference ‖ P_candidate), nats
  double top1_agreement = 0; // fraction of scored positions with the same most likely token
  long scored = 0;           // positions scored
  int windows = 0;
  double ppl_delta() const { return ppl / ppl_reference - 1; }  // relative
};

// Evaluates `tokens` in up to max_windows windows of dec.context() tokens (dec.batch() windows
// per pass), once with `reference` and once with `candidate` served (nullptr: the fp32 arena).
// Throws std::invalid_argument when the stream holds no whole window. Leaves the fp32 arena
// served and the caches empty.
Quality compare_quality(Decoder<float>& dec, const LinearWeights* reference,
                        const LinearWeights* candidate, const std::vector<int>& tokens,
                        int max_windows);

}  // namespace ellm
