#include "pim/calibration/adc_calibration.h"

#include <cmath>
#include <random>

#include "gtest/gtest.h"
#include "pim/calibration/calibration_file.h"
#include "pim/calibration/linearization.h"
#include "testing/curve_chip.h"

namespace pim::calibration {
namespace {

using testing::CurveChip;
using testing::EffectiveThresholds;
using testing::SmallSpec;
using testing::TrueColumn;

// Truth shapes deliberately unlike the simulator's parametric profile (a symmetric parabolic
// bow): an S-shaped sine INL, a one-sided cubic, and a segmented (sawtooth) INL with big DNL.
enum class Shape { kSine, kCubic, kSawtooth };

CurveChip::ColumnFn Profile(Shape shape, double inl_lsb, double dnl_lsb, double offset_lsb, double gain_sigma,
                            double noise_lsb, uint64_t seed) {
  return [=](int macro, int column, int bits) {
    std::mt19937_64 rng(seed * 1000003 + uint64_t(macro) * 1009 + uint64_t(column) * 17 + uint64_t(bits));
    std::normal_distribution<double> normal;
    TrueColumn c;
    c.gain = 1 + gain_sigma * normal(rng);
    c.offset_lsb = offset_lsb * normal(rng);
    c.noise_sigma_lsb = noise_lsb * (1 + 0.3 * (column % 3));  // columns differ in noise
    const int n = (1 << bits) - 1;
    for (int i = 0; i < n; ++i) {
      const double f = (i + 1.0) / (n + 1.0);
      double inl = 0;
      switch (shape) {
        case Shape::kSine: inl = inl_lsb * std::sin(2 * M_PI * f); break;
        case Shape::kCubic: inl = inl_lsb * (f * f * f * 2 - 1); break;
        case Shape::kSawtooth: inl = inl_lsb * (std::fmod(f * 4, 1.0) - 0.5); break;
      }
      double t = i + 0.5 + inl + dnl_lsb * normal(rng);
      if (i > 0) t = std::max(t, c.thresholds.back());
      c.thresholds.push_back(t);
    }
    return c;
  };
}

struct Case {
  const char* name;
  Shape shape;
  double inl, dnl, offset, gain_sigma, noise;
  int bits;
};

class AdcCalibrationAccuracy : public ::testing::TestWithParam<Case> {};

// The checks of the issue: thresholds within 0.1 LSB RMS of the truth, noise sigma within 10%,
// INL and DNL maxima within 0.1 LSB, on every column in both modes.
TEST_P(AdcCalibrationAccuracy, MatchesTheTrueCurves) {
  const Case& k = GetParam();
  CurveChip chip(SmallSpec(1, 64, 8, 7), Profile(k.shape, k.inl, k.dnl, k.offset, k.gain_sigma, k.noise, 11), 99);
  AdcCalibrationOptions options;
  options.adc_bits = {k.bits};
  options.repeats = 16;
  absl::StatusOr<AdcCalibration> cal = CalibrateAdc(chip, options, "test");
  ASSERT_TRUE(cal.ok()) << cal.status();
  // Signed: even and odd columns but the last; unsigned: all 8.
  ASSERT_EQ(cal->columns.size(), 7u + 8u);
  ASSERT_EQ(cal->unreachable.size(), 1u);
  for (const AdcColumnResult& col : cal->columns) {
    const ColumnFit& fit = col.fit;
    const TrueColumn& truth = chip.Column(col.macro, col.column, k.bits);
    const int lo = LowestCode(fit.mode, k.bits);
    ColumnFit true_fit;
    true_fit.adc_bits = k.bits;
    true_fit.mode = fit.mode;
    true_fit.thresholds = EffectiveThresholds(truth, lo);
    true_fit.measured = fit.measured;
    ComputeLinearity(true_fit);
    double ss = 0;
    int n = 0;
    for (size_t i = 0; i < fit.thresholds.size(); ++i) {
      if (!fit.measured[i]) continue;
      ss += std::pow(fit.thresholds[i] - true_fit.thresholds[i], 2);
      ++n;
    }
    const std::string where = absl::StrCat(AdcModeName(fit.mode), " column ", col.column);
    ASSERT_GT(n, int(fit.thresholds.size()) - 3) << where;
    EXPECT_LT(std::sqrt(ss / n), 0.1) << where;
    // Noise is reported in the column's mean code width (the fitted line's LSB); the truth in the
    // same unit is the input-referred sigma over the true curve's fitted slope.
    const double true_sigma = truth.noise_sigma_lsb / truth.gain / true_fit.slope;
    EXPECT_NEAR(fit.noise_sigma_lsb, true_sigma, 0.1 * true_sigma) << where;
    EXPECT_NEAR(fit.inl_max_lsb, true_fit.inl_max_lsb, 0.1) << where;
    EXPECT_NEAR(fit.dnl_max_lsb, true_fit.dnl_max_lsb, 0.1) << where;
    EXPECT_NEAR(fit.gain, true_fit.gain, 0.01) << where;
    EXPECT_NEAR(fit.offset_lsb, true_fit.offset_lsb, 0.1) << where;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Profiles, AdcCalibrationAccuracy,
    ::testing::Values(Case{"sine", Shape::kSine, 1.2, 0.15, 1.5, 0.03, 0.3, 5},
                      Case{"cubic", Shape::kCubic, 0.8, 0.05, 0.7, 0.02, 0.6, 4},
                      Case{"sawtooth", Shape::kSawtooth, 0.6, 0.25, 2.5, 0.04, 0.15, 5},
                      Case{"sine_7bit", Shape::kSine, 2.0, 0.1, 1.0, 0.02, 0.25, 7}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

TEST(AdcCalibration, RepeatsGiveFreshNoise) {
  // With one repeat per point the noise must still be visible: each conversion gets its own
  // sample index. Identical noise at every step setting would show up as a zero-width fit.
  CurveChip chip(SmallSpec(1, 64, 4, 4), Profile(Shape::kSine, 0, 0, 0, 0, 0.5, 3), 5);
  AdcCalibrationOptions options;
  options.adc_bits = {4};
  options.repeats = 4;
  options.modes = {AdcMode::kUnsigned};
  absl::StatusOr<AdcCalibration> cal = CalibrateAdc(chip, options, "test");
  ASSERT_TRUE(cal.ok()) << cal.status();
  for (const AdcColumnResult& col : cal->columns) {
    EXPECT_NEAR(col.fit.noise_sigma_lsb, chip.Column(0, col.column, 4).noise_sigma_lsb, 0.1);
  }
}

TEST(AdcCalibration, WritesAFileTheLinearizationAccepts) {
  CurveChip chip(SmallSpec(2, 64, 4, 3), Profile(Shape::kCubic, 0.3, 0.05, 0.5, 0.02, 0.2, 4), 6);
  AdcCalibrationOptions options;
  options.repeats = 8;
  int64_t last_done = -1, last_total = -1;
  options.progress = [&](int64_t done, int64_t total) {
    EXPECT_GT(done, last_done);
    last_done = done;
    last_total = total;
  };
  absl::StatusOr<AdcCalibration> cal = CalibrateAdc(chip, options, "test:uri");
  ASSERT_TRUE(cal.ok()) << cal.status();
  EXPECT_EQ(last_done, last_total);
  EXPECT_EQ(last_done, cal->vectors);
  const proto::Calibration file = CalibrationToProto(*cal);
  EXPECT_EQ(file.device(), "test:uri");
  EXPECT_EQ(file.device_serial(), "curve-chip");
  EXPECT_EQ(file.columns_size(), 2 * (3 + 4));
  absl::StatusOr<Linearization> lin = LinearizationFromCalibration(file, "mem");
  ASSERT_TRUE(lin.ok()) << lin.status();
  EXPECT_NE(lin->Find(1, 3, 3, false), nullptr);
  EXPECT_EQ(lin->Find(1, 3, 3, true), nullptr);  // the last column has no signed ADC
}

TEST(AdcCalibration, RejectsOptionsOutsideTheChip) {
  CurveChip chip(SmallSpec(1, 64, 4, 5), Profile(Shape::kSine, 0, 0, 0, 0, 0, 1), 1);
  AdcCalibrationOptions options;
  options.adc_bits = {6};
  absl::StatusOr<AdcCalibration> cal = CalibrateAdc(chip, options, "test");
  ASSERT_FALSE(cal.ok());
  EXPECT_NE(cal.status().message().find("resolution 6 bits outside the chip's 1..5"), std::string::npos);
  options.adc_bits = {};
  options.macros = {3};
  cal = CalibrateAdc(chip, options, "test");
  ASSERT_FALSE(cal.ok());
  EXPECT_NE(cal.status().message().find("macro 3"), std::string::npos);
}

}  // namespace
}  // namespace pim::calibration
