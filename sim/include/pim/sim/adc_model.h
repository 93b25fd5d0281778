#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "pim/runtime/chip_spec.h"

namespace pim::sim {

// The code range of one conversion: signed [-2^(b-1), 2^(b-1)-1] for native and bit_serial,
// unsigned [0, 2^b-1] for differential (docs/onnx-convention.md 3.1).
struct AdcRange {
  int lo = 0;
  int hi = 0;
  int levels() const { return hi - lo + 1; }
};
AdcRange CodeRange(runtime::Scheme scheme, int adc_bits);

// The normative ideal ADC: clamp(rne(p / step), lo, hi), the division and the rounding in IEEE
// double (std::nearbyint in the default rounding mode). `saturated` (optional) is set when
// rne(p / step) lies outside [lo, hi].
int IdealAdcCode(int64_t p, double step, AdcRange range, bool* saturated = nullptr);

// Explicit transfer curve of one column, as measured by `pimcal adc` or written by hand.
struct ColumnTable {
  int macro = 0;
  int column = 0;
  // 2^b - 1 nondecreasing thresholds in code-index space: code index i (code lo + i) is produced
  // while the analog value u - lo (u = p / step, in LSB) lies in [thresholds[i-1], thresholds[i]).
  // For an unsigned ADC this is p / step itself; a signed conversion is the same converter with
  // its range shifted by 2^(b-1) codes. The ideal table is {0.5, 1.5, ...}.
  std::vector<double> thresholds;
  double noise_sigma_lsb = 0;
};

// Parameters of a non-ideality profile (the plain form of proto::NonIdealityProfile; loading and
// validation live in profile.h). All zero and no tables: the ideal ADC.
struct NonIdealityParams {
  std::string name = "ideal";
  uint64_t seed = 0;
  double gain_sigma = 0;        // relative gain error, std dev across columns
  double offset_sigma_lsb = 0;  // offset error, std dev across columns, LSB
  double inl_bow_lsb = 0;       // peak of the smooth INL bow (mid-scale), LSB
  double dnl_sigma_lsb = 0;     // per-threshold scatter, LSB
  double noise_sigma_lsb = 0;   // thermal noise before quantization, LSB
  std::vector<ColumnTable> columns;  // explicit curves; override the parameters for their column
};

// The static transfer of one physical ADC column at one resolution, plus its noise sigma.
// Immutable once built; thread-safe to share.
class ColumnCurve {
 public:
  ColumnCurve() = default;  // the ideal column

  // Converts the exact partial sum `p` of a conversion with step `step` (integer-MAC units) in
  // `range`. The analog value in LSB is v = gain * p / step + offset + sigma * n, n a standard
  // normal drawn from `noise_key` (see noise.h) only when sigma > 0; the code is lo plus the
  // number of thresholds <= v - lo. An ideal column returns IdealAdcCode exactly.
  // `saturated` is set when v lies outside the converter's full scale [lo - 0.5, hi + 0.5).
  int Convert(int64_t p, double step, AdcRange range, uint64_t noise_key, bool* saturated) const;
  // Convert with the noise deviate given: `normal_estimate` must lie within
  // kStandardNormalEstimateError (noise.h) of StandardNormal(noise_key). Where that error could
  // change the code or the saturation flag, StandardNormal decides, so the result always equals
  // Convert's; it only saves drawing the exact deviate (the AVX2 kernel estimates 8 at a time).
  int ConvertWithEstimate(int64_t p, double step, AdcRange range, uint64_t noise_key,
                          double normal_estimate, bool* saturated) const;

  bool ideal() const { return ideal_; }
  double noise_sigma_lsb() const { return noise_sigma_lsb_; }
  double gain() const { return gain_; }
  double offset_lsb() const { return offset_lsb_; }
  // 2^b - 1 thresholds in code-index space (empty for the ideal column).
  absl::Span<const double> thresholds() const {
    return bounds_.empty() ? absl::Span<const double>() : absl::MakeConstSpan(bounds_).subspan(1, bounds_.size() - 2);
  }

 private:
  friend class AdcModel;
  bool ideal_ = true;
  double gain_ = 1.0;
  double offset_lsb_ = 0.0;
  double noise_sigma_lsb_ = 0.0;
  // -inf, the thresholds, +inf: the interval [bounds_[i], bounds_[i + 1]) of code index i exists
  // for every i, so ConvertWithEstimate's margin test needs no range checks. Empty when ideal.
  std::vector<double> bounds_;
  void SetThresholds(absl::Span<const double> thresholds);
  // The number of thresholds <= index (the code index of an analog index).
  int CodeIndex(double index) const;
  // Whether an analog index lies outside the full scale [-0.5, levels - 0.5).
  static bool Saturated(double index, AdcRange range) { return index < -0.5 || index >= range.levels() - 0.5; }
  static constexpr int kCountedThresholds = 31;  // up to 5-bit ADCs: counted, not searched
};

// The ADCs of a whole chip under one non-ideality profile. Per-column gain, offset and threshold
// errors are drawn from the profile seed and the column's (macro, column), so a column keeps its
// errors whichever layer uses it; explicit tables replace them for their column.
// Immutable; thread-safe.
class AdcModel {
 public:
  AdcModel() = default;  // ideal
  explicit AdcModel(NonIdealityParams params);

  // True when every conversion is the ideal rule (no errors, no noise, no tables).
  bool ideal() const { return ideal_; }
  const NonIdealityParams& params() const { return params_; }
  uint64_t seed() const { return params_.seed; }

  // The transfer of (macro, column) at `adc_bits` bits. Fails when an explicit table for that
  // column has another resolution (names the column and both sizes).
  absl::StatusOr<ColumnCurve> Curve(int macro, int column, int adc_bits) const;

 private:
  NonIdealityParams params_;
  bool ideal_ = true;
};

}  // namespace pim::sim
