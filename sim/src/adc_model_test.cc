#include "pim/sim/adc_model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "pim/sim/noise.h"

namespace pim::sim {
namespace {

using runtime::Scheme;

TEST(AdcModel, CodeRangeSignedOrUnsigned) {
  EXPECT_EQ(CodeRange(Scheme::kNative, 7).lo, -64);
  EXPECT_EQ(CodeRange(Scheme::kNative, 7).hi, 63);
  EXPECT_EQ(CodeRange(Scheme::kBitSerial, 1).lo, -1);
  EXPECT_EQ(CodeRange(Scheme::kBitSerial, 1).hi, 0);
  EXPECT_EQ(CodeRange(Scheme::kDifferential, 3).lo, 0);
  EXPECT_EQ(CodeRange(Scheme::kDifferential, 3).hi, 7);
}

TEST(AdcModel, IdealRoundsHalfToEven) {
  const AdcRange r{-64, 63};
  EXPECT_EQ(IdealAdcCode(5, 2.0, r), 2);   // 2.5 -> 2
  EXPECT_EQ(IdealAdcCode(7, 2.0, r), 4);   // 3.5 -> 4
  EXPECT_EQ(IdealAdcCode(-5, 2.0, r), -2);
  EXPECT_EQ(IdealAdcCode(-7, 2.0, r), -4);
}

TEST(AdcModel, IdealSaturatesAndReportsIt) {
  const AdcRange r{0, 7};
  bool sat = false;
  EXPECT_EQ(IdealAdcCode(100, 1.0, r, &sat), 7);
  EXPECT_TRUE(sat);
  EXPECT_EQ(IdealAdcCode(-3, 1.0, r, &sat), 0);
  EXPECT_TRUE(sat);
  EXPECT_EQ(IdealAdcCode(7, 1.0, r, &sat), 7);
  EXPECT_FALSE(sat);
}

TEST(AdcModel, AllZeroProfileIsIdeal) {
  EXPECT_TRUE(AdcModel().ideal());
  NonIdealityParams p;
  p.seed = 12;
  EXPECT_TRUE(AdcModel(p).ideal());
  p.noise_sigma_lsb = 0.1;
  EXPECT_FALSE(AdcModel(p).ideal());
}

TEST(AdcModel, ColumnErrorsAreAFunctionOfSeedAndColumn) {
  NonIdealityParams p;
  p.seed = 3;
  p.gain_sigma = 0.05;
  p.offset_sigma_lsb = 0.5;
  p.dnl_sigma_lsb = 0.3;
  const AdcModel a(p), b(p);
  const ColumnCurve c1 = *a.Curve(0, 5, 7), c2 = *b.Curve(0, 5, 7), c3 = *a.Curve(0, 6, 7);
  EXPECT_EQ(c1.gain(), c2.gain());
  EXPECT_EQ(c1.thresholds(), c2.thresholds());
  EXPECT_NE(c1.gain(), c3.gain());
  EXPECT_NE(c1.offset_lsb(), c3.offset_lsb());
  p.seed = 4;
  EXPECT_NE(AdcModel(p).Curve(0, 5, 7)->gain(), c1.gain());
}

TEST(AdcModel, ThresholdsStayMonotonicUnderLargeDnl) {
  NonIdealityParams p;
  p.seed = 9;
  p.dnl_sigma_lsb = 3.0;
  const AdcModel m(p);
  int merged = 0;
  for (int column = 0; column < 16; ++column) {
    const ColumnCurve curve = *m.Curve(0, column, 6);
    const absl::Span<const double> t = curve.thresholds();
    ASSERT_EQ(t.size(), 63u);
    for (size_t i = 1; i < t.size(); ++i) {
      ASSERT_GE(t[i], t[i - 1]);
      merged += t[i] == t[i - 1];
    }
  }
  EXPECT_GT(merged, 0) << "large DNL should produce missing codes";
}

TEST(AdcModel, InlBowBendsMidScale) {
  NonIdealityParams p;
  p.inl_bow_lsb = 1.0;
  const ColumnCurve c = *AdcModel(p).Curve(0, 0, 3);
  // Thresholds of a 3-bit converter: ideal i + 0.5, bow 4 f (1 - f), f = (i + 1) / 8.
  EXPECT_DOUBLE_EQ(c.thresholds()[3], 3.5 + 1.0);
  EXPECT_DOUBLE_EQ(c.thresholds()[0], 0.5 + 4 * (1.0 / 8) * (7.0 / 8));
  // Mid-scale input 3.7 LSB (unsigned) now reads code 3, not 4.
  bool sat = false;
  EXPECT_EQ(c.Convert(37, 10.0, AdcRange{0, 7}, 0, &sat), 3);
}

TEST(AdcModel, GainAndOffsetShiftTheTransfer) {
  ColumnTable t;
  NonIdealityParams p;
  p.offset_sigma_lsb = 1e-9;  // non-ideal, but practically no error
  const ColumnCurve c = *AdcModel(p).Curve(0, 0, 4);
  bool sat = true;
  EXPECT_EQ(c.Convert(6, 2.0, AdcRange{-8, 7}, 0, &sat), 3);
  EXPECT_FALSE(sat);
  EXPECT_EQ(c.Convert(-100, 2.0, AdcRange{-8, 7}, 0, &sat), -8);
  EXPECT_TRUE(sat);
}

TEST(AdcModel, ExplicitTableReplacesParametersForItsColumn) {
  NonIdealityParams p;
  p.gain_sigma = 0.1;
  ColumnTable t;
  t.macro = 2;
  t.column = 7;
  t.thresholds = {0.2, 0.9, 3.0};  // 2-bit
  p.columns.push_back(t);
  const AdcModel m(p);
  const ColumnCurve c = *m.Curve(2, 7, 2);
  EXPECT_EQ(c.thresholds(), t.thresholds);
  bool sat = false;
  // Signed 2-bit: index = u + 2. u = 0.5 -> index 2.5 -> two thresholds below -> code -2 + 2 = 0.
  EXPECT_EQ(c.Convert(1, 2.0, AdcRange{-2, 1}, 0, &sat), 0);
  EXPECT_EQ(c.Convert(2, 2.0, AdcRange{-2, 1}, 0, &sat), 1);  // index 3.0 reaches the last one
  absl::StatusOr<ColumnCurve> wrong = m.Curve(2, 7, 3);
  EXPECT_EQ(wrong.status().message(),
            "profile 'ideal' column (macro 2, column 7) has 3 thresholds; a 3-bit conversion needs 7");
}

// Convert counts the thresholds at or below the analog index (a vectorized count up to 5 bits, a
// branch-free binary search above); it must agree with a plain count for curves far from ideal
// (wide DNL, equal thresholds, codes squeezed to one end) and indices anywhere, including far off
// scale.
TEST(AdcModel, ConvertCountsThresholdsBelowTheIndex) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> unit(0, 1);
  for (int trial = 0; trial < 240; ++trial) {
    const int bits = 1 + trial % 8;
    const int count = (1 << bits) - 1;
    ColumnTable t;
    t.macro = 0;
    t.column = trial;
    double th = -1.5 + 3 * unit(rng);
    for (int i = 0; i < count; ++i) {
      // Every 5th: the ideal curve, so quarter-LSB indices land exactly on thresholds.
      t.thresholds.push_back(trial % 5 == 4 ? i + 0.5 : th);
      if (trial % 7 != 0) th += (trial % 3 == 0 ? 4.0 : 1.5) * unit(rng);  // every 7th: all equal
    }
    NonIdealityParams p;
    p.columns.push_back(t);
    const ColumnCurve c = *AdcModel(p).Curve(0, trial, bits);
    const AdcRange r{0, count};
    for (int64_t x = -40; x <= 4 * count + 40; ++x) {
      const double index = double(x) / 4;  // p / step with step 4: quarter-LSB points, exact
      const int want = int(std::upper_bound(t.thresholds.begin(), t.thresholds.end(), index) - t.thresholds.begin());
      ASSERT_EQ(c.Convert(x, 4.0, r, 0, nullptr), want) << "trial " << trial << " index " << index;
    }
    EXPECT_EQ(c.Convert(int64_t{1} << 40, 1.0, r, 0, nullptr), count);
    EXPECT_EQ(c.Convert(-(int64_t{1} << 40), 1.0, r, 0, nullptr), 0);
  }
}

// ConvertWithEstimate must return Convert's code and saturation for any estimate within
// kStandardNormalEstimateError of the exact deviate, also when the analog value lands exactly on
// a threshold, where the estimate alone would decide wrongly half the time.
TEST(AdcModel, ConvertWithEstimateEqualsConvert) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int64_t> sums(-60, 60);  // indices -0.6 .. 16.6 with the noise
  std::uniform_real_distribution<double> within(-1, 1);
  const AdcRange r{-8, 7};
  const double step = 7.0, sigma = 0.4;
  int edges = 0, fallbacks_needed = 0;
  for (int trial = 0; trial < 20000; ++trial) {
    const uint64_t key = ConversionNoiseKey(5, 0, 0, 0, uint64_t(trial));
    const int64_t p = sums(rng);
    const double exact_index = (double(p) / step + sigma * StandardNormal(key)) - r.lo;
    // Every 4th trial puts a threshold exactly at the analog index Convert computes.
    ColumnTable t;
    for (int i = 0; i < 15; ++i) t.thresholds.push_back(i + 0.5);
    t.noise_sigma_lsb = sigma;
    const bool on_threshold = trial % 4 == 0 && exact_index > 0 && exact_index < 15;
    if (on_threshold) {
      const int i = std::clamp(int(exact_index), 0, 14);
      t.thresholds[size_t(i)] = exact_index;
      for (int j = i + 1; j < 15; ++j) t.thresholds[size_t(j)] = std::max(t.thresholds[size_t(j)], exact_index);
      for (int j = 0; j < i; ++j) t.thresholds[size_t(j)] = std::min(t.thresholds[size_t(j)], exact_index);
      ++edges;
    }
    NonIdealityParams params;
    params.columns.push_back(t);
    const ColumnCurve c = *AdcModel(params).Curve(0, 0, 4);
    bool sat_want = false, sat_got = false;
    const int want = c.Convert(p, step, r, key, &sat_want);
    for (double e : {within(rng), 1.0, -1.0}) {
      const double estimate = StandardNormal(key) + e * kStandardNormalEstimateError;
      const int got = c.ConvertWithEstimate(p, step, r, key, estimate, &sat_got);
      ASSERT_EQ(got, want) << "trial " << trial << " estimate off by " << e * kStandardNormalEstimateError;
      ASSERT_EQ(sat_got, sat_want) << "trial " << trial;
      // Would the estimate alone have decided otherwise? (It must, sometimes, or the fallback
      // was never exercised.)
      const double index = (double(p) / step + sigma * estimate) - r.lo;
      fallbacks_needed += on_threshold && index < exact_index;
    }
  }
  EXPECT_GT(edges, 1000);
  EXPECT_GT(fallbacks_needed, 100);
}

// The same where the analog value sits exactly on a full-scale edge (index -0.5 or levels - 0.5:
// only the saturation flag is in doubt), and on a 16-bit signed range, where v = index + lo is
// large and its rounding, not the estimate, dominates the difference.
TEST(AdcModel, ConvertWithEstimateEqualsConvertAtEdgesAndOnWideRanges) {
  // Full-scale edges of a 4-bit signed ADC.
  const AdcRange r{-8, 7};
  const double sigma = 0.4;
  NonIdealityParams params;
  params.noise_sigma_lsb = sigma;
  params.offset_sigma_lsb = 1e-300;  // non-ideal, with no offset to speak of
  const ColumnCurve c = *AdcModel(params).Curve(0, 0, 4);
  // 16 bits signed, ideal thresholds, analog value near -32767.5 (index 0.5, the first threshold).
  const AdcRange wide{-32768, 32767};
  const double wide_sigma = 1e-3, wide_step = 0x1p38;  // p / step exact: multiples of 2^-38
  ColumnTable t;
  for (int i = 0; i < 65535; ++i) t.thresholds.push_back(i + 0.5);
  t.noise_sigma_lsb = wide_sigma;
  NonIdealityParams wide_params;
  wide_params.columns.push_back(t);
  const ColumnCurve w = *AdcModel(wide_params).Curve(0, 0, 16);

  int flag_flips = 0, wide_flips = 0;
  for (uint64_t key = 0; key < 4000; ++key) {
    const double n = StandardNormal(key);
    for (double e : {1.0, -1.0}) {
      const double estimate = n + e * kStandardNormalEstimateError;
      // The step chosen so that p / step + sigma * n is lo - 0.5 or hi + 0.5 to within an ulp.
      for (double target : {r.lo - 0.5, r.hi + 0.5}) {
        const int64_t p = target < 0 ? -100 : 100;
        const double step = double(p) / (target - sigma * n);
        if (!(step > 0)) continue;
        bool sat_want = false, sat_got = false;
        const int want = c.Convert(p, step, r, key, &sat_want);
        ASSERT_EQ(c.ConvertWithEstimate(p, step, r, key, estimate, &sat_got), want) << "key " << key;
        ASSERT_EQ(sat_got, sat_want) << "key " << key << " at the edge " << target;
        const double index = (double(p) / step + sigma * estimate) - r.lo;
        flag_flips += (index < -0.5 || index >= r.levels() - 0.5) != sat_want;
      }
      // p chosen so that v = p / step + sigma * n lies within an ulp of v (2^-38) of -32767.5.
      const int64_t p = std::llround((-32767.5 - wide_sigma * n) * wide_step) + int64_t(key % 3) - 1;
      const int want = w.Convert(p, wide_step, wide, key, nullptr);
      ASSERT_EQ(w.ConvertWithEstimate(p, wide_step, wide, key, estimate, nullptr), want) << "16-bit, key " << key;
      const double index = (double(p) / wide_step + wide_sigma * estimate) - wide.lo;
      wide_flips += wide.lo + int(index >= 0.5) != want;
    }
  }
  EXPECT_GT(flag_flips, 100);  // the estimate alone would have set the flag wrongly
  EXPECT_GT(wide_flips, 0);    // ... or chosen the wrong code
}

}  // namespace
}  // namespace pim::sim
