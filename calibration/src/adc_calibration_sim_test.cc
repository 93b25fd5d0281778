// The ADC calibration against the real simulator (SimBackend + AdcModel) with profiles written
// for this test, not the bundled ideal/typical/harsh ones: a negative bow, a large bow with big
// offsets, and explicit per-column tables with an S-shaped INL.

#include <cmath>

#include "gtest/gtest.h"
#include "pim/calibration/adc_calibration.h"
#include "pim/calibration/calibration_file.h"
#include "pim/sim/adc_model.h"
#include "pim/sim/sim_backend.h"

namespace pim::calibration {
namespace {

runtime::ChipSpec Spec() {
  runtime::ChipSpec spec;
  spec.name = "calibration-sim-test";
  spec.macros = 2;
  spec.banks_per_macro = 2;
  spec.rows = 64;
  spec.columns = 12;
  spec.cell_bits = 1;
  spec.adc_bits = 7;
  spec.max_input_bits = 4;
  spec.max_weight_bits = 8;
  spec.max_bit_serial_input_bits = 8;
  spec.timing.clock_mhz = 100;
  spec.timing.readout_columns_per_cycle = 16;
  return spec;
}

struct Case {
  const char* name;
  sim::NonIdealityParams profile;
  int bits;
};

sim::NonIdealityParams Params(const char* name, uint64_t seed, double gain, double offset, double bow, double dnl,
                              double noise) {
  sim::NonIdealityParams p;
  p.name = name;
  p.seed = seed;
  p.gain_sigma = gain;
  p.offset_sigma_lsb = offset;
  p.inl_bow_lsb = bow;
  p.dnl_sigma_lsb = dnl;
  p.noise_sigma_lsb = noise;
  return p;
}

sim::NonIdealityParams Tables(int bits) {
  sim::NonIdealityParams p = Params("tables", 9, 0, 0, 0, 0, 0.3);
  for (int m = 0; m < 2; ++m) {
    for (int c = 0; c < 12; ++c) {
      sim::ColumnTable t;
      t.macro = m;
      t.column = c;
      t.noise_sigma_lsb = 0.2 + 0.05 * c;
      const int n = (1 << bits) - 1;
      for (int i = 0; i < n; ++i) {
        const double f = (i + 1.0) / (n + 1.0);
        t.thresholds.push_back(i + 0.5 + 0.9 * std::sin(2 * M_PI * f + 0.3 * c) + 0.4 * (m - 0.5));
      }
      p.columns.push_back(t);
    }
  }
  return p;
}

// The simulator's true thresholds of a column in the fit's terms: code-index space of the input
// u (the curve's thresholds are on the analog value gain * u + offset).
std::vector<double> TrueIndexThresholds(const sim::ColumnCurve& truth, int lo) {
  std::vector<double> thresholds;
  for (double t : truth.thresholds()) thresholds.push_back((t + lo - truth.offset_lsb()) / truth.gain() - lo);
  return thresholds;
}

class SimAdcCalibration : public ::testing::TestWithParam<Case> {};

TEST_P(SimAdcCalibration, FitsTheSimulatorsTrueCurves) {
  const Case& k = GetParam();
  sim::SimParams params;
  params.spec = Spec();
  params.seed = k.profile.seed;
  params.profile_name = k.profile.name;
  params.profile = k.profile;
  absl::StatusOr<std::unique_ptr<sim::SimBackend>> chip = sim::SimBackend::Create(params);
  ASSERT_TRUE(chip.ok()) << chip.status();
  AdcCalibrationOptions options;
  options.adc_bits = {k.bits};
  options.repeats = 16;
  absl::StatusOr<AdcCalibration> cal = CalibrateAdc(**chip, options, "sim");
  ASSERT_TRUE(cal.ok()) << cal.status();
  ASSERT_EQ(cal->columns.size(), 2u * (11 + 12));
  const sim::AdcModel model(k.profile);
  double worst_rms = 0, worst_sigma = 0, worst_inl = 0, worst_dnl = 0;
  for (const AdcColumnResult& col : cal->columns) {
    const ColumnFit& fit = col.fit;
    absl::StatusOr<sim::ColumnCurve> truth = model.Curve(col.macro, col.column, k.bits);
    ASSERT_TRUE(truth.ok()) << truth.status();
    const int lo = LowestCode(fit.mode, k.bits);
    ColumnFit true_fit;
    true_fit.adc_bits = k.bits;
    true_fit.mode = fit.mode;
    true_fit.thresholds = TrueIndexThresholds(*truth, lo);
    true_fit.measured = fit.measured;
    ComputeLinearity(true_fit);
    double ss = 0;
    int n = 0;
    for (size_t i = 0; i < fit.thresholds.size(); ++i) {
      if (!fit.measured[i]) continue;
      ss += std::pow(fit.thresholds[i] - true_fit.thresholds[i], 2);
      ++n;
    }
    const std::string where = absl::StrCat(AdcModeName(fit.mode), " macro ", col.macro, " column ", col.column);
    ASSERT_GT(n, int(fit.thresholds.size()) - 4) << where;
    const double rms = std::sqrt(ss / n);
    const double true_sigma = truth->noise_sigma_lsb() / truth->gain() / true_fit.slope;
    EXPECT_LT(rms, 0.1) << where;
    EXPECT_NEAR(fit.noise_sigma_lsb, true_sigma, 0.1 * true_sigma) << where;
    EXPECT_NEAR(fit.inl_max_lsb, true_fit.inl_max_lsb, 0.1) << where;
    EXPECT_NEAR(fit.dnl_max_lsb, true_fit.dnl_max_lsb, 0.1) << where;
    worst_rms = std::max(worst_rms, rms);
    worst_sigma = std::max(worst_sigma, std::abs(fit.noise_sigma_lsb / true_sigma - 1));
    worst_inl = std::max(worst_inl, std::abs(fit.inl_max_lsb - true_fit.inl_max_lsb));
    worst_dnl = std::max(worst_dnl, std::abs(fit.dnl_max_lsb - true_fit.dnl_max_lsb));
  }
  std::printf("%s: worst threshold RMS %.4f LSB, noise %.1f%%, INL max %.4f LSB, DNL max %.4f LSB\n", k.name,
              worst_rms, 100 * worst_sigma, worst_inl, worst_dnl);
}

INSTANTIATE_TEST_SUITE_P(
    Profiles, SimAdcCalibration,
    ::testing::Values(Case{"negative_bow", Params("negative_bow", 77, 0.02, 0.8, -1.0, 0.25, 0.5), 7},
                      Case{"big_bow_offsets", Params("big_bow_offsets", 5, 0.04, 2.0, 2.0, 0.1, 0.2), 5},
                      Case{"sine_tables", Tables(6), 6}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

// In unsigned mode the sweep starts at u = 0, about half an LSB below the first threshold, and an
// offset often moves that threshold near or below 0. The fit pools the conversions of every step
// setting at u = 0 and locates a transition cut by the sweep's start from its tail, so the first
// threshold, the one the most frequent (small) partial sums of differential layers cross, is
// measured on every column, not extrapolated (which was up to 0.87 LSB off on this profile).
TEST(SimAdcCalibration, UnsignedFirstThresholdIsMeasuredWithFewRepeats) {
  sim::SimParams params;
  params.spec = Spec();
  params.spec.columns = 64;
  params.seed = 11;
  params.profile = Params("few_repeats", 11, 0.01, 0.3, 0.5, 0.15, 0.35);
  AdcCalibrationOptions options;
  options.adc_bits = {4};
  options.modes = {AdcMode::kUnsigned};
  options.repeats = 4;
  auto chip = sim::SimBackend::Create(params);
  ASSERT_TRUE(chip.ok()) << chip.status();
  absl::StatusOr<AdcCalibration> cal = CalibrateAdc(**chip, options, "sim");
  ASSERT_TRUE(cal.ok()) << cal.status();
  const sim::AdcModel model(params.profile);
  double worst = 0;
  for (const AdcColumnResult& col : cal->columns) {
    const std::string where = absl::StrCat("macro ", col.macro, " column ", col.column);
    absl::StatusOr<sim::ColumnCurve> truth = model.Curve(col.macro, col.column, 4);
    ASSERT_TRUE(truth.ok()) << truth.status();
    const double true_first = TrueIndexThresholds(*truth, LowestCode(AdcMode::kUnsigned, 4))[0];
    EXPECT_TRUE(col.fit.measured[0]) << where;
    EXPECT_NEAR(col.fit.thresholds[0], true_first, 0.2) << where;
    worst = std::max(worst, std::abs(col.fit.thresholds[0] - true_first));
  }
  std::printf("first threshold of %zu columns: worst error %.3f LSB\n", cal->columns.size(), worst);
}

TEST(SimAdcCalibration, SameProfileAndSeedGiveTheSameFile) {
  sim::SimParams params;
  params.spec = Spec();
  params.seed = 3;
  params.profile = Params("repeat", 3, 0.02, 0.5, 0.7, 0.2, 0.4);
  AdcCalibrationOptions options;
  options.adc_bits = {4};
  options.repeats = 4;
  options.macros = {1};
  std::string bytes[2];
  for (std::string& b : bytes) {
    auto chip = sim::SimBackend::Create(params);
    ASSERT_TRUE(chip.ok());
    absl::StatusOr<AdcCalibration> cal = CalibrateAdc(**chip, options, "sim");
    ASSERT_TRUE(cal.ok()) << cal.status();
    ASSERT_TRUE(CalibrationToProto(*cal).SerializeToString(&b));
  }
  EXPECT_EQ(bytes[0], bytes[1]);
}

}  // namespace
}  // namespace pim::calibration
