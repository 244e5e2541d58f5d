// The statistics behind a claim's verdict (src/stats/seed_stats.hpp) on inputs with known answers.
// Reference values computed independently with mpmath at 30 digits (the t quantile by root-finding
// on the regularized incomplete beta function; Welch's p the same way).
#include "stats/seed_stats.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>

using namespace ellm::stats;

TEST(SeedStats, ConfidenceIntervalIsStudentT) {
  const SeedSummary s = summarize_seeds({1, 2, 3, 4, 5});
  EXPECT_EQ(s.n, 5);
  EXPECT_DOUBLE_EQ(s.mean, 3);
  EXPECT_NEAR(s.sd, std::sqrt(2.5), 1e-15);
  const double half = 2.77644510519779348979 * std::sqrt(2.5) / std::sqrt(5.0);  // t(0.975, 4)
  EXPECT_NEAR(s.ci_low, 3 - half, 1e-12);
  EXPECT_NEAR(s.ci_high, 3 + half, 1e-12);
  const SeedSummary three = summarize_seeds({10, 12, 14});  // t(0.975, 2) = 4.3026527297494618
  EXPECT_NEAR(three.ci_high - three.mean, 4.3026527297494618 * 2 / std::sqrt(3.0), 1e-12);
}

TEST(SeedStats, OneValueHasNoInterval) {
  const SeedSummary s = summarize_seeds({7});
  EXPECT_EQ(s.sd, 0);
  EXPECT_TRUE(std::isinf(s.ci_low) && s.ci_low < 0);
  EXPECT_TRUE(std::isinf(s.ci_high) && s.ci_high > 0);
}

TEST(SeedStats, WelchMatchesTheTextbookExample) {
  // Welch's t-test, example 1 of the Wikipedia article (unequal sample variances).
  const std::vector<double> a = {27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4};
  const std::vector<double> b = {27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4};
  const WelchTest w = welch_t_test(a, b);
  EXPECT_NEAR(w.t, -2.455356398286004, 1e-12);
  EXPECT_NEAR(w.df, 24.98852929023141, 1e-10);
  EXPECT_NEAR(w.p_two_sided, 0.02137800146286706, 1e-12);
  EXPECT_EQ(directional_verdict(w, -1), Verdict::Holds);        // a < b, p = 0.021
  EXPECT_EQ(directional_verdict(w, +1), Verdict::DoesNotHold);  // the opposite claim
  EXPECT_EQ(directional_verdict(w, -1, 0.01), Verdict::Inconclusive);
}

TEST(SeedStats, SamplesWithoutSpread) {
  EXPECT_EQ(welch_t_test({1, 1, 1}, {1, 1}).p_two_sided, 1);
  const WelchTest w = welch_t_test({1, 1, 1}, {2, 2, 2});
  EXPECT_EQ(w.p_two_sided, 0);
  EXPECT_EQ(directional_verdict(w, -1), Verdict::Holds);
}

TEST(SeedStats, RangeVerdictJudgesTheWholeInterval) {
  const SeedSummary s = summarize_seeds({3.7, 3.8, 3.9});  // mean 3.8, CI 3.8 ± 0.248
  EXPECT_EQ(range_verdict(s, 3.0, 4.5), Verdict::Holds);
  EXPECT_EQ(range_verdict(s, 3.7, 3.9), Verdict::Inconclusive);  // the interval sticks out
  EXPECT_EQ(range_verdict(s, 5.0, 6.0), Verdict::DoesNotHold);
  EXPECT_EQ(range_verdict(summarize_seeds({3.8}), 3.0, 4.5), Verdict::Inconclusive);  // one seed
}

TEST(SeedStats, BadInputIsRefused) {
  EXPECT_THROW(summarize_seeds({}), std::invalid_argument);
  EXPECT_THROW(summarize_seeds({1, std::numeric_limits<double>::quiet_NaN()}), std::invalid_argument);
  EXPECT_THROW(summarize_seeds({1, 2}, 1.0), std::invalid_argument);
  EXPECT_THROW(welch_t_test({1}, {1, 2}), std::invalid_argument);
  EXPECT_THROW(directional_verdict(WelchTest{}, 0), std::invalid_argument);
  EXPECT_THROW(range_verdict(summarize_seeds({1, 2}), 2, 1), std::invalid_argument);
}
