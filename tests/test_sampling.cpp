// Next-token sampling (src/infer/sampling.hpp): greedy, temperature, top-p, and a seed that
// reproduces a draw.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "infer/sampling.hpp"

namespace ellm {
namespace {

std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(float(std::log(p)));
  return l;
}

std::vector<double> frequencies(TokenSampler& s, const std::vector<float>& logits, int draws) {
  std::vector<double> f(logits.size(), 0.0);
  for (int i = 0; i < draws; i++) f[s.next(logits.data(), int(logits.size()))] += 1.0 / draws;
  return f;
}

TEST(Sampling, GreedyTakesTheFirstMaximum) {
  TokenSampler s({0.0, 1.0, 1});
  const std::vector<float> l = {0.5f, 2.0f, -1.0f, 2.0f};
  EXPECT_EQ(s.next(l.data(), 4), 1);
}

TEST(Sampling, TemperatureOneDrawsTheSoftmax) {
  TokenSampler s({1.0, 1.0, 5});
  const std::vector<double> p = {0.4, 0.3, 0.2, 0.1};
  const std::vector<double> f = frequencies(s, logits_of(p), 40000);
  for (std::size_t i = 0; i < p.size(); i++) EXPECT_NEAR(f[i], p[i], 0.01) << i;
}

TEST(Sampling, TemperatureSharpens) {  // T = 0.5 squares the probabilities (renormalised)
  TokenSampler s({0.5, 1.0, 6});
  const std::vector<double> f = frequencies(s, logits_of({0.6, 0.4}), 40000);
  EXPECT_NEAR(f[0], 0.36 / 0.52, 0.01);
}

TEST(Sampling, TopPKeepsTheSmallestNucleusReachingP) {
  TokenSampler s({1.0, 0.5, 7});  // 0.4 < 0.5 ≤ 0.4 + 0.3: tokens 0 and 1, in the ratio 4 : 3
  const std::vector<double> f = frequencies(s, logits_of({0.3, 0.4, 0.2, 0.1}), 40000);
  EXPECT_NEAR(f[1], 4.0 / 7, 0.01);
  EXPECT_NEAR(f[0], 3.0 / 7, 0.01);
  EXPECT_EQ(f[2] + f[3], 0.0);
}

TEST(Sampling, ASeedReproducesTheDraws) {
  const std::vector<float> l = logits_of({0.25, 0.25, 0.25, 0.25});
  TokenSampler a({1.0, 1.0, 42}), b({1.0, 1.0, 42}), c({1.0, 1.0, 43});
  std::vector<int> da, db, dc;
  for (int i = 0; i < 64; i++) {
    da.push_back(a.next(l.data(), 4));
    db.push_back(b.next(l.data(), 4));
    dc.push_back(c.next(l.data(), 4));
  }
  EXPECT_EQ(da, db);
  EXPECT_NE(da, dc);
}

}  // namespace
}  // namespace ellm
