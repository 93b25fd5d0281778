#include "pim/sim/noise.h"

#include <gtest/gtest.h>

#include <cmath>

namespace pim::sim {
namespace {

TEST(Noise, KeyDependsOnEveryField) {
  const uint64_t k = ConversionNoiseKey(1, 2, 3, 4, 5);
  EXPECT_EQ(k, ConversionNoiseKey(1, 2, 3, 4, 5));
  EXPECT_NE(k, ConversionNoiseKey(9, 2, 3, 4, 5));
  EXPECT_NE(k, ConversionNoiseKey(1, 9, 3, 4, 5));
  EXPECT_NE(k, ConversionNoiseKey(1, 2, 9, 4, 5));
  EXPECT_NE(k, ConversionNoiseKey(1, 2, 3, 9, 5));
  EXPECT_NE(k, ConversionNoiseKey(1, 2, 3, 4, 9));
  EXPECT_NE(ConversionNoiseKey(1, 2, 3, 0, 0), ConversionNoiseKey(1, 3, 2, 0, 0));
}

TEST(Noise, StandardNormalHasUnitMomentsAndGaussianTails) {
  const int n = 200000;
  double sum = 0, sum2 = 0;
  int beyond2 = 0;
  for (int i = 0; i < n; ++i) {
    const double z = StandardNormal(ConversionNoiseKey(7, 0, 0, 0, uint64_t(i)));
    sum += z;
    sum2 += z * z;
    beyond2 += std::abs(z) > 2;
  }
  const double mean = sum / n, var = sum2 / n - mean * mean;
  EXPECT_NEAR(mean, 0, 0.01);
  EXPECT_NEAR(var, 1, 0.015);
  EXPECT_NEAR(double(beyond2) / n, 0.0455, 0.003);  // P(|z| > 2) of a Gaussian
}

TEST(Noise, UniformStaysInsideOpenInterval) {
  EXPECT_GT(UniformOpen01(0), 0.0);
  EXPECT_LT(UniformOpen01(~uint64_t{0}), 1.0);
}

}  // namespace
}  // namespace pim::sim
