#include "infer/bench.hpp"

#include <algorithm>
#include <chrono>

#include "util/rng.hpp"

namespace ellm {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

BenchTimes bench_decoder(Decoder<float>& dec, const BenchSettings& s) {
  const int B = dec.batch(), V = dec.config().vocab_size;
  Rng rng(s.seed);
  std::vector<int> prompt(std::size_t(B) * s.pp), next(static_cast<std::size_t>(B));
  for (int& t : prompt) t = int(rng.below(std::uint64_t(V)));
  BenchTimes times;
  for (int r = 0; r < s.warmup + s.repetitions; r++) {
    const bool recorded = r >= s.warmup;
    dec.reset();
    auto t0 = Clock::now();
    dec.forward(prompt.data(), s.pp, false);
    if (recorded) times.pp_seconds.push_back(since(t0));

    dec.reset();
    for (int b = 0; b < B; b++) next[b] = prompt[std::size_t(b) * s.pp];
    const auto g0 = Clock::now();
    for (int i = 0; i < s.tg; i++) {
      t0 = Clock::now();
      const float* logits = dec.forward(next.data(), 1, false);  // (B,V)
      for (int b = 0; b < B; b++) {
        const float* row = logits + std::size_t(b) * V;
        next[b] = int(std::max_element(row, row + V) - row);
      }
      if (recorded) times.token_seconds.push_back(since(t0));
    }
    if (recorded) times.tg_seconds.push_back(since(g0));
  }
  return times;
}

}  // namespace ellm
