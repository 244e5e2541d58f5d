// The latency–bandwidth (α–β, Hockney) cost of the four collectives the trainer uses, with the
// algorithm's step counts written down (docs/SCALING.md), and its least-squares fit to a measured
// sweep. n is the bytes of the whole buffer on one rank: the vector all-reduced, the full (p·n/p)
// buffer reduce-scattered or all-gathered, the whole send buffer of an all-to-all.
//   all-reduce      2⌈log2 p⌉ α + 2(p−1)/p · n β   (Rabenseifner: reduce-scatter + all-gather)
//   reduce-scatter   ⌈log2 p⌉ α +  (p−1)/p · n β   (recursive halving)
//   all-gather       ⌈log2 p⌉ α +  (p−1)/p · n β   (recursive doubling / Bruck)
//   all-to-all        (p−1)   α +  (p−1)/p · n β   (pairwise exchange)
#pragma once
#include <string>
#include <vector>

namespace ellm::predict {

enum class Collective { all_reduce, reduce_scatter, all_gather, all_to_all };
inline constexpr Collective kCollectives[] = {Collective::all_reduce, Collective::reduce_scatter,
                                              Collective::all_gather, Collective::all_to_all};
const char* collective_name(Collective c);  // "all_reduce", …: the JSON keys
// The collective named `name`; throws std::invalid_argument naming the allowed names.
Collective parse_collective(const std::string& name);

// t(p, n) = latency_steps·α + bandwidth_factor·n·β for one call on p ranks.
struct AlgorithmCost {
  double latency_steps;
  double bandwidth_factor;
};
AlgorithmCost algorithm_cost(Collective c, int ranks);

struct AlphaBeta {
  double alpha_s = 0;          // seconds per message step
  double beta_s_per_byte = 0;  // seconds per byte (1 / bandwidth)
};
double collective_seconds(Collective c, int ranks, double bytes, const AlphaBeta& link);

// α and β by message size: a library switches algorithms by size (Open MPI's tuned component) and
// a network's behaviour changes with it, so a collective may carry one fit per size band. Bands
// are sorted; a call of n bytes takes the first band with n < below_bytes (the last: unbounded).
struct Band {
  double below_bytes;  // +inf for the last band
  AlphaBeta link;
};
using Bands = std::vector<Band>;
const AlphaBeta& band_for(const Bands& bands, double bytes);

// One measured call: `seconds` for a collective of `bytes` on `ranks` ranks.
struct Sample {
  int ranks;
  double bytes;
  double seconds;
};
// α and β minimising Σ (model − t)²/t over the samples, both kept ≥ 0. Weighting by 1/t sits
// between plain least squares (the largest messages alone set both figures) and relative errors
// (the many small messages, whose latency a shared machine's scheduling inflates, pull β off the
// large messages that dominate a training step's communication). Throws std::invalid_argument when the samples cannot determine them (fewer than
// two distinct byte counts, or a non-positive time).
AlphaBeta fit_alpha_beta(Collective c, const std::vector<Sample>& samples);

}  // namespace ellm::predict
