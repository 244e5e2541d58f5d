// Summaries of per-iteration samples (latency and the like).
#pragma once
#include <vector>

#include <nlohmann/json.hpp>

namespace ellm {

struct Summary {
  int count = 0;
  double mean = 0, min = 0, p50 = 0, p95 = 0, max = 0;
};

// Percentiles by linear interpolation between closest ranks (NumPy's default); empty → all zero.
Summary summarize(std::vector<double> samples);
nlohmann::json to_json(const Summary& s);

}  // namespace ellm
