// A small deterministic RNG (SplitMix64): the same seed gives the same numbers with any compiler
// or standard library, unlike std::normal_distribution, so runs reproduce across machines.
#pragma once
#include <cmath>
#include <cstdint>

namespace ellm {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next_u64() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return double(next_u64() >> 11) * 0x1.0p-53; }  // [0, 1)
  std::uint64_t below(std::uint64_t n) { return next_u64() % n; }  // bias < n/2^64: negligible
  double normal() {  // Box–Muller
    const double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  std::uint64_t state_;
};

// A seed for stream `stream` derived from a base seed, so each use (init, data order, ...) gets its own.
inline std::uint64_t derive_seed(std::uint64_t base, std::uint64_t stream) {
  return Rng(base ^ (stream * 0xD1B54A32D192ED03ull)).next_u64();
}

}  // namespace ellm
