// Statistics over repeated runs of one configuration (seeds), and the verdict they give a claim.
// A paper claim gets a verdict only from >= 3 seeds (docs/REPRODUCE.md):
// - summarize_seeds: mean, sample standard deviation and the two-sided Student-t confidence
//   interval of the mean;
// - welch_t_test: "configuration A's mean differs from B's" without assuming equal variances
//   (Welch 1947; the Welch–Satterthwaite degrees of freedom);
// - a directional claim (A < B, say) holds when the difference has the claimed sign and p < alpha,
//   does not hold when it has the other sign and p < alpha, and is inconclusive otherwise; a claim
//   that a quantity lies in a range holds when the whole confidence interval lies inside it, does
//   not hold when the interval lies wholly outside, and is inconclusive when they overlap.
// Distributions come from Boost.Math (Debian's libboost-dev).
#pragma once
#include <string>
#include <vector>

namespace ellm::stats {

struct SeedSummary {
  int n = 0;
  double mean = 0, sd = 0;  // sd: sample standard deviation (n − 1); 0 when n = 1
  double ci_low = 0, ci_high = 0;
  double confidence = 0.95;
};

// std::invalid_argument when x is empty or holds a non-finite value.
SeedSummary summarize_seeds(const std::vector<double>& x, double confidence = 0.95);

struct WelchTest {
  double difference = 0;  // mean(a) − mean(b)
  double t = 0, df = 0, p_two_sided = 1;
};

// std::invalid_argument unless both samples hold >= 2 finite values. Two samples without any
// spread give t = ±inf, p = 0 when their means differ, and t = 0, p = 1 when they are equal.
WelchTest welch_t_test(const std::vector<double>& a, const std::vector<double>& b);

enum class Verdict { Holds, DoesNotHold, Inconclusive };
const char* verdict_name(Verdict v);  // "holds", "does not hold", "inconclusive"

// The claim mean(a) < mean(b) (claimed_sign −1) or mean(a) > mean(b) (+1).
Verdict directional_verdict(const WelchTest& test, int claimed_sign, double alpha = 0.05);
// The claim low <= mean <= high, judged on the summary's confidence interval.
Verdict range_verdict(const SeedSummary& s, double low, double high);

}  // namespace ellm::stats
