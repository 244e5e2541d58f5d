#include "stats/seed_stats.hpp"

#include <boost/math/distributions/students_t.hpp>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace ellm::stats {
namespace {

struct Moments {
  int n;
  double mean, variance;  // variance with n − 1
};

Moments moments(const std::vector<double>& x, const char* what) {
  if (x.empty()) throw std::invalid_argument(std::string(what) + ": no values");
  double sum = 0;
  for (double v : x) {
    if (!std::isfinite(v)) throw std::invalid_argument(std::string(what) + ": a value is not finite");
    sum += v;
  }
  const double mean = sum / double(x.size());
  double squares = 0;
  for (double v : x) squares += (v - mean) * (v - mean);
  return {int(x.size()), mean, x.size() > 1 ? squares / double(x.size() - 1) : 0.0};
}

}  // namespace

SeedSummary summarize_seeds(const std::vector<double>& x, double confidence) {
  if (!(confidence > 0 && confidence < 1)) throw std::invalid_argument("summarize_seeds: confidence must lie in (0, 1)");
  const Moments m = moments(x, "summarize_seeds");
  SeedSummary s;
  s.n = m.n;
  s.mean = m.mean;
  s.sd = std::sqrt(m.variance);
  s.confidence = confidence;
  if (m.n < 2) {  // one value: no interval can be given
    s.ci_low = -std::numeric_limits<double>::infinity();
    s.ci_high = std::numeric_limits<double>::infinity();
    return s;
  }
  const boost::math::students_t dist(m.n - 1);
  const double half = boost::math::quantile(dist, 0.5 + confidence / 2) * s.sd / std::sqrt(double(m.n));
  s.ci_low = s.mean - half;
  s.ci_high = s.mean + half;
  return s;
}

WelchTest welch_t_test(const std::vector<double>& a, const std::vector<double>& b) {
  const Moments ma = moments(a, "welch_t_test (first sample)"), mb = moments(b, "welch_t_test (second sample)");
  if (ma.n < 2 || mb.n < 2) throw std::invalid_argument("welch_t_test: each sample needs at least 2 values");
  WelchTest w;
  w.difference = ma.mean - mb.mean;
  const double va = ma.variance / ma.n, vb = mb.variance / mb.n, se2 = va + vb;
  if (se2 == 0) {  // no spread at all: the means are equal or they are not
    w.t = w.difference == 0 ? 0 : std::copysign(std::numeric_limits<double>::infinity(), w.difference);
    w.df = ma.n + mb.n - 2;
    w.p_two_sided = w.difference == 0 ? 1 : 0;
    return w;
  }
  w.t = w.difference / std::sqrt(se2);
  w.df = se2 * se2 / (va * va / (ma.n - 1) + vb * vb / (mb.n - 1));
  w.p_two_sided = 2 * boost::math::cdf(boost::math::complement(boost::math::students_t(w.df), std::fabs(w.t)));
  return w;
}

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::Holds: return "holds";
    case Verdict::DoesNotHold: return "does not hold";
    case Verdict::Inconclusive: return "inconclusive";
  }
  return "?";
}

Verdict directional_verdict(const WelchTest& test, int claimed_sign, double alpha) {
  if (claimed_sign != 1 && claimed_sign != -1) throw std::invalid_argument("directional_verdict: claimed_sign must be +1 or -1");
  if (test.p_two_sided >= alpha || test.difference == 0) return Verdict::Inconclusive;
  return (test.difference > 0) == (claimed_sign > 0) ? Verdict::Holds : Verdict::DoesNotHold;
}

Verdict range_verdict(const SeedSummary& s, double low, double high) {
  if (!(low <= high)) throw std::invalid_argument("range_verdict: low must not exceed high");
  if (s.ci_low >= low && s.ci_high <= high) return Verdict::Holds;
  if (s.ci_high < low || s.ci_low > high) return Verdict::DoesNotHold;
  return Verdict::Inconclusive;
}

}  // namespace ellm::stats
