// Timing a decoder by llama-bench's methodology (docs/INFERENCE.md): prompt processing of pp
// tokens (one prefill chunk from empty caches) and token generation of tg tokens (one at a time
// from empty caches, each step's greedy token fed back), each repeated after warm-up runs that
// are not recorded. Tokens are drawn at random (seeded): timing does not depend on the text.
#pragma once
#include <cstdint>
#include <vector>

#include "infer/decoder.hpp"

namespace ellm {

struct BenchSettings {
  int pp = 512, tg = 128;  // prompt tokens, generated tokens (per sequence)
  int repetitions = 5, warmup = 1;
  std::uint64_t seed = 0;
};

struct BenchTimes {
  std::vector<double> pp_seconds;     // per repetition: the prefill of pp tokens
  std::vector<double> tg_seconds;     // per repetition: tg tokens generated
  std::vector<double> token_seconds;  // every generated token of every repetition
};

// Runs the tests on dec as it is served; pp + 0 and tg must fit the context.
BenchTimes bench_decoder(Decoder<float>& dec, const BenchSettings& s);

}  // namespace ellm
