#include "metrics/peak.hpp"

#include <algorithm>
#include <chrono>
#include <vector>

#include "kernels/gemm.hpp"
#include "util/rng.hpp"

namespace ellm {

double measure_sgemm_peak(int n, double min_seconds) {
  const std::size_t nn = std::size_t(n) * n;
  std::vector<float> a(nn), b(nn), c(nn);
  Rng rng(7);
  for (std::size_t i = 0; i < nn; i++) {
    a[i] = float(rng.uniform() - 0.5);
    b[i] = float(rng.uniform() - 0.5);
  }
  using clock = std::chrono::steady_clock;
  const double flops = 2.0 * n * double(n) * n;
  double best = 0.0, elapsed = 0.0;
  for (int rep = 0; rep < 2 || elapsed < min_seconds; rep++) {  // the first rep warms caches and threads
    const auto t0 = clock::now();
    kernels::gemm<float>(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    const double s = std::chrono::duration<double>(clock::now() - t0).count();
    elapsed += s;
    if (rep > 0) best = std::max(best, flops / s);
  }
  return best;
}

}  // namespace ellm
