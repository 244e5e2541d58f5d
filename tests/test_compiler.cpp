// The compiler computes what the source says under the project's flags. GCC 12.2 with AVX-512
// (-march=native on Zen 4/5) stores small constant vectors wrongly through its SLP vectoriser
// (CMakeLists.txt turns it off): these are the shapes seen to break, built with the same flags.
#include <gtest/gtest.h>

#include <array>
#include <vector>

namespace {

TEST(Compiler, ConstantVectorsKeepTheirZeros) {
  const std::vector<double> v = {16, 16, 0, 0};  // was {16, 16, 16, 16}
  EXPECT_EQ(v[2], 0.0);
  EXPECT_EQ(v[3], 0.0);
  const std::vector<double> w = {1, 2, 0, 0, 3, 3, 0, 0};
  EXPECT_EQ(w, (std::vector<double>{1, 2, 0, 0, 3, 3, 0, 0}));
  const std::array<long, 4> a = {7, 7, 0, 0};
  EXPECT_EQ(a[1] + a[2] + a[3], 7);
}

}  // namespace
