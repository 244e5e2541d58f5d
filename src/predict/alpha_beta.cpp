#include "predict/alpha_beta.hpp"

#include <cmath>
#include <set>
#include <stdexcept>

namespace ellm::predict {

const char* collective_name(Collective c) {
  switch (c) {
    case Collective::all_reduce: return "all_reduce";
    case Collective::reduce_scatter: return "reduce_scatter";
    case Collective::all_gather: return "all_gather";
    case Collective::all_to_all: return "all_to_all";
  }
  return "?";
}

Collective parse_collective(const std::string& name) {
  for (Collective c : kCollectives) {
    if (name == collective_name(c)) return c;
  }
  throw std::invalid_argument("unknown collective '" + name +
                              "' (allowed: all_reduce, reduce_scatter, all_gather, all_to_all)");
}

AlgorithmCost algorithm_cost(Collective c, int ranks) {
  if (ranks <= 1) return {0, 0};
  const double p = ranks, log_steps = std::ceil(std::log2(p)), share = (p - 1) / p;
  switch (c) {
    case Collective::all_reduce: return {2 * log_steps, 2 * share};
    case Collective::reduce_scatter:
    case Collective::all_gather: return {log_steps, share};
    case Collective::all_to_all: return {p - 1, share};
  }
  return {0, 0};
}

double collective_seconds(Collective c, int ranks, double bytes, const AlphaBeta& link) {
  const AlgorithmCost k = algorithm_cost(c, ranks);
  return k.latency_steps * link.alpha_s + k.bandwidth_factor * bytes * link.beta_s_per_byte;
}

const AlphaBeta& band_for(const Bands& bands, double bytes) {
  for (const Band& b : bands) {
    if (bytes < b.below_bytes) return b.link;
  }
  return bands.back().link;
}

AlphaBeta fit_alpha_beta(Collective c, const std::vector<Sample>& samples) {
  std::set<double> sizes;
  // Weighted normal equations of t ≈ a·α + b·β with weights 1/t.
  double saa = 0, sab = 0, sbb = 0, sat = 0, sbt = 0;
  for (const Sample& s : samples) {
    if (!(s.seconds > 0) || s.ranks < 2) {
      throw std::invalid_argument(std::string("fit ") + collective_name(c) +
                                  ": every sample needs ≥ 2 ranks and a positive time");
    }
    const AlgorithmCost k = algorithm_cost(c, s.ranks);
    const double w = 1 / s.seconds, a = k.latency_steps, b = k.bandwidth_factor * s.bytes;
    saa += w * a * a, sab += w * a * b, sbb += w * b * b, sat += w * a * s.seconds, sbt += w * b * s.seconds;
    sizes.insert(s.bytes);
  }
  if (sizes.size() < 2) {
    throw std::invalid_argument(std::string("fit ") + collective_name(c) +
                                ": needs samples of at least two message sizes");
  }
  const double det = saa * sbb - sab * sab;
  AlphaBeta f{(sat * sbb - sab * sbt) / det, (saa * sbt - sab * sat) / det};
  // A negative coefficient is noise around zero: fix it at 0 and fit the other alone.
  if (f.alpha_s < 0) f = {0, sbt / sbb};
  if (f.beta_s_per_byte < 0) f = {sat / saa, 0};
  return f;
}

}  // namespace ellm::predict
