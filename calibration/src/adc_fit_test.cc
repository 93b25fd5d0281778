#include "pim/calibration/adc_fit.h"

#include <cmath>
#include <random>

#include "gtest/gtest.h"

namespace pim::calibration {
namespace {

// Synthetic sweep of a column with index-space thresholds `t` (code lo + #{t <= u - lo + n}),
// noise `sigma`, inputs u from u0 to u1 in steps of `du`.
std::vector<SweepPoint> Sweep(const std::vector<double>& t, int lo, double sigma, double u0, double u1, double du,
                              int repeats, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<SweepPoint> points;
  for (double u = u0; u <= u1; u += du) {
    SweepPoint pt;
    pt.u = u;
    for (int r = 0; r < repeats; ++r) {
      const double v = u - lo + sigma * normal(rng);
      pt.codes.push_back(int16_t(lo + int(std::upper_bound(t.begin(), t.end(), v) - t.begin())));
    }
    std::sort(pt.codes.begin(), pt.codes.end());
    points.push_back(std::move(pt));
  }
  return points;
}

double RmsError(const ColumnFit& fit, const std::vector<double>& truth) {
  double ss = 0;
  int n = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    if (!fit.measured[i]) continue;
    ss += (fit.thresholds[i] - truth[i]) * (fit.thresholds[i] - truth[i]);
    ++n;
  }
  return std::sqrt(ss / n);
}

TEST(AdcFit, IdealNoiseFreeColumnIsIdeal) {
  std::vector<double> t;
  for (int i = 0; i < 31; ++i) t.push_back(i + 0.5);
  const auto points = Sweep(t, -16, 0, -20, 20, 0.01, 1, 1);
  absl::StatusOr<ColumnFit> fit = FitColumn(points, AdcMode::kSigned, 5);
  ASSERT_TRUE(fit.ok()) << fit.status();
  for (int i = 0; i < 31; ++i) {
    EXPECT_TRUE(fit->measured[i]);
    EXPECT_NEAR(fit->thresholds[i], t[i], 0.006) << i;
  }
  EXPECT_NEAR(fit->gain, 1, 1e-3);
  EXPECT_NEAR(fit->offset_lsb, 0, 1e-2);
  EXPECT_LT(fit->inl_max_lsb, 0.01);
  EXPECT_LT(fit->dnl_max_lsb, 0.02);
  EXPECT_EQ(fit->noise_sigma_lsb, 0);
}

TEST(AdcFit, RecoversNoisyBowedThresholdsAndSigma) {
  // An S-shaped INL (one full sine period) with per-threshold scatter.
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal;
  std::vector<double> t;
  for (int i = 0; i < 63; ++i) {
    const double f = (i + 1) / 64.0;
    t.push_back(i + 0.5 + 0.8 * std::sin(2 * M_PI * f) + 0.1 * normal(rng));
  }
  for (int i = 1; i < 63; ++i) t[i] = std::max(t[i], t[i - 1]);
  const double sigma = 0.4;
  const auto points = Sweep(t, 0, sigma, -3, 68, 0.07, 24, 2);
  absl::StatusOr<ColumnFit> fit = FitColumn(points, AdcMode::kUnsigned, 6);
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_LT(RmsError(*fit, t), 0.1);
  EXPECT_NEAR(fit->noise_sigma_lsb, sigma, 0.1 * sigma);
  ColumnFit truth;
  truth.adc_bits = 6;
  truth.mode = AdcMode::kUnsigned;
  truth.thresholds = t;
  ComputeLinearity(truth);
  EXPECT_NEAR(fit->inl_max_lsb, truth.inl_max_lsb, 0.1);
  EXPECT_NEAR(fit->dnl_max_lsb, truth.dnl_max_lsb, 0.1);
}

TEST(AdcFit, ThresholdsOutsideTheSweepAreExtrapolatedAndMarked) {
  std::vector<double> t;
  for (int i = 0; i < 15; ++i) t.push_back(1.02 * (i + 0.5) + 0.3);
  // The sweep stops at u = 8: thresholds above it are never crossed.
  const auto points = Sweep(t, 0, 0.2, -1, 8, 0.02, 8, 3);
  absl::StatusOr<ColumnFit> fit = FitColumn(points, AdcMode::kUnsigned, 4);
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_TRUE(fit->measured[0]);
  EXPECT_FALSE(fit->measured[14]);
  EXPECT_NEAR(fit->thresholds[14], t[14], 0.1);  // the line through the measured ones
  EXPECT_NEAR(fit->gain, 1 / 1.02, 0.01);
}

TEST(AdcFit, PointsOfEqualInputArePooled) {
  std::vector<double> t;
  for (int i = 0; i < 7; ++i) t.push_back(i + 0.4);
  std::vector<SweepPoint> rest = Sweep(t, 0, 0.3, 0.05, 9, 0.05, 4, 5);
  // Four step settings each convert u = 0 four times; the first one happened to see two codes
  // above 0, which alone would put threshold 0 below the sweep.
  std::vector<SweepPoint> split = {{0.0, {0, 0, 1, 1}}, {0.0, {0, 0, 0, 0}}, {0.0, {0, 0, 0, 0}}, {0.0, {0, 0, 0, 0}}};
  std::vector<SweepPoint> merged = {{0.0, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1}}};
  split.insert(split.end(), rest.begin(), rest.end());
  merged.insert(merged.end(), rest.begin(), rest.end());
  absl::StatusOr<ColumnFit> a = FitColumn(split, AdcMode::kUnsigned, 3);
  absl::StatusOr<ColumnFit> b = FitColumn(merged, AdcMode::kUnsigned, 3);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE(a->measured[0]);
  EXPECT_EQ(a->thresholds, b->thresholds);
  EXPECT_EQ(a->noise_sigma_lsb, b->noise_sigma_lsb);
}

TEST(AdcFit, ATransitionCutBySweepStartIsLocatedFromItsTail) {
  // Threshold 0 sits at u = -0.2, below the unsigned sweep's start at 0, and 0.4 LSB below the
  // line through the others: the sweep sees only the upper part of its transition.
  const std::vector<double> t = {-0.2, 1.2, 2.2, 3.2, 4.2, 5.2, 6.2};
  double ss = 0;
  const int seeds = 20;
  for (int seed = 1; seed <= seeds; ++seed) {
    const auto points = Sweep(t, 0, 0.3, 0, 9, 0.04, 16, uint64_t(seed));
    absl::StatusOr<ColumnFit> fit = FitColumn(points, AdcMode::kUnsigned, 3);
    ASSERT_TRUE(fit.ok()) << fit.status();
    EXPECT_TRUE(fit->measured[0]) << "seed " << seed;
    ss += std::pow(fit->thresholds[0] - t[0], 2);
  }
  // Measured 0.05 over these seeds; the line (the old extrapolation) would be 0.4 off.
  EXPECT_LT(std::sqrt(ss / seeds), 0.08);
}

// A 3-bit unsigned column whose code 0 is two LSB wide at the bottom: threshold 0 lies 1.5 LSB
// below the unsigned sweep's start, and the line through thresholds 1..6 would put it at 0.5.
const std::vector<double> kFirstThresholdFarBelowTheSweep = {-1.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5};

TEST(AdcFit, AThresholdTheDataPutBelowTheSweepIsNotExtrapolatedIntoIt) {
  // Every conversion in the sweep gave a code above 0: threshold 0 may not be put inside it.
  const auto points = Sweep(kFirstThresholdFarBelowTheSweep, 0, 0.2, 0, 9, 0.05, 4, 8);
  absl::StatusOr<ColumnFit> fit = FitColumn(points, AdcMode::kUnsigned, 3);
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_FALSE(fit->measured[0]);
  EXPECT_LE(fit->thresholds[0], 0);
  EXPECT_NEAR(fit->thresholds[1], 1.5, 0.1);
}

TEST(AdcFit, AStrayCodeIsNotATail) {
  // Every conversion is above threshold 0 but one, somewhere in the sweep, that came out as code
  // 0. That is no tail of its transition: the threshold stays unmeasured and the column's line
  // is the one without the stray.
  const auto clean = Sweep(kFirstThresholdFarBelowTheSweep, 0, 0.05, 0, 9, 0.05, 16, 9);
  absl::StatusOr<ColumnFit> reference = FitColumn(clean, AdcMode::kUnsigned, 3);
  ASSERT_TRUE(reference.ok()) << reference.status();
  ASSERT_FALSE(reference->measured[0]);
  for (double stray_u : {0.2, 0.4}) {
    std::vector<SweepPoint> points = clean;
    SweepPoint& pt = points[size_t(std::lround(stray_u / 0.05))];
    pt.codes.front() = 0;
    std::sort(pt.codes.begin(), pt.codes.end());
    absl::StatusOr<ColumnFit> fit = FitColumn(points, AdcMode::kUnsigned, 3);
    ASSERT_TRUE(fit.ok()) << fit.status();
    EXPECT_FALSE(fit->measured[0]) << "stray at u = " << pt.u << ": threshold 0 fitted at " << fit->thresholds[0];
    EXPECT_EQ(fit->slope, reference->slope) << "stray at u = " << pt.u;
  }
}

TEST(AdcFit, DnlSeesAWideCode) {
  ColumnFit fit;
  fit.adc_bits = 3;
  fit.mode = AdcMode::kUnsigned;
  fit.thresholds = {0.5, 1.5, 2.5, 4.5, 5.5, 6.5, 7.5};  // code 3 is two LSB wide
  ComputeLinearity(fit);
  EXPECT_GT(fit.dnl_lsb[2], 0.6);  // code index 3 lies between thresholds 2 and 3
  EXPECT_NEAR(fit.dnl_max_lsb, fit.dnl_lsb[2], 1e-12);
  EXPECT_GT(fit.inl_max_lsb, 0.3);
}

TEST(AdcFit, RejectsCodesOutsideTheRange) {
  std::vector<SweepPoint> points = {{0.0, {0, 9}}};
  absl::StatusOr<ColumnFit> fit = FitColumn(points, AdcMode::kUnsigned, 3);
  ASSERT_FALSE(fit.ok());
  EXPECT_NE(fit.status().message().find("code 9 outside the 3-bit unsigned range [0, 7]"), std::string::npos)
      << fit.status();
}

TEST(AdcFit, RejectsAnEmptySweep) {
  EXPECT_FALSE(FitColumn({}, AdcMode::kSigned, 3).ok());
}

TEST(AdcFit, RejectsASweepThatCrossesNothing) {
  std::vector<SweepPoint> points = {{0.0, {3, 3}}, {0.1, {3, 3}}};
  absl::StatusOr<ColumnFit> fit = FitColumn(points, AdcMode::kUnsigned, 3);
  ASSERT_FALSE(fit.ok());
  EXPECT_NE(fit.status().message().find("crossed none"), std::string::npos) << fit.status();
}

TEST(AdcFit, AColumnWhoseThresholdsDoNotRiseIsAnError) {
  // Every threshold at one point: the column jumps from its lowest to its highest code at once.
  const std::vector<double> t(7, 3.0);
  const auto points = Sweep(t, 0, 0.3, -1, 9, 0.05, 4, 7);
  absl::StatusOr<ColumnFit> fit = FitColumn(points, AdcMode::kUnsigned, 3);
  ASSERT_FALSE(fit.ok());
  EXPECT_NE(fit.status().message().find("the column does not convert"), std::string::npos) << fit.status();
}

}  // namespace
}  // namespace pim::calibration
