#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace pim::calibration {

// The two ways a column's ADC converts (docs/onnx-convention.md 3.1): signed codes [-2^(b-1), 2^(b-1)-1] for the
// native and bit_serial schemes, unsigned codes [0, 2^b-1] for differential. A column is
// measured separately in each mode because a gain error acts around the analog zero, which sits
// at mid-scale in one mode and at the bottom in the other.
enum class AdcMode { kSigned, kUnsigned };

const char* AdcModeName(AdcMode mode);  // "signed", "unsigned"

// Lowest and highest code of `adc_bits` bits in `mode`.
int LowestCode(AdcMode mode, int adc_bits);
int HighestCode(AdcMode mode, int adc_bits);

// The raw measurement of one column: at each analog input u (the exact partial sum over the ADC
// step, p / Delta, in LSB of the ideal quantizer) the codes of `repeats` conversions.
struct SweepPoint {
  double u = 0;
  std::vector<int16_t> codes;  // sorted ascending
};

// The fitted transfer of one column in one mode and resolution. All thresholds are in code-index
// space: code lo + i is produced while u - lo lies in [thresholds[i-1], thresholds[i]); the ideal
// converter has thresholds {0.5, 1.5, ...}. They are the *effective* thresholds: gain and offset
// errors are already inside them.
struct ColumnFit {
  int adc_bits = 0;
  AdcMode mode = AdcMode::kSigned;
  std::vector<double> thresholds;        // 2^b - 1 values, nondecreasing
  std::vector<bool> measured;            // false: the sweep never crossed it (extrapolated)
  std::vector<double> threshold_sigma;   // per-threshold noise (input LSB); 0 where unresolved
  int resolved_thresholds = 0;           // thresholds whose noise width was resolved
  // Least-squares line through the measured thresholds, T_i = slope * (i + 0.5) + intercept.
  double slope = 1;
  double intercept = 0;
  // Converter gain (1/slope) and offset in LSB at zero input (analog value = gain * u + offset).
  double gain = 1;
  double offset_lsb = 0;
  // Thermal noise before quantization, in the converter's own LSB (input-referred sigma * gain).
  double noise_sigma_lsb = 0;
  // Integral and differential non-linearity in LSB (of the fitted line), per threshold / per
  // interior code, and their max |.| and RMS over measured thresholds.
  std::vector<double> inl_lsb;  // size 2^b - 1; 0 where not measured
  std::vector<double> dnl_lsb;  // size 2^b - 2: code index i+1 between thresholds i and i+1
  double inl_max_lsb = 0, inl_rms_lsb = 0;
  double dnl_max_lsb = 0, dnl_rms_lsb = 0;
};

// Fits thresholds, noise, gain, offset, INL and DNL to one column's sweep (see
// docs/calibration.md for the method): per threshold a probit maximum-likelihood fit of
// P(code > c | u) = Phi((u - t_c) / s), the noise pooled as the median of the resolved s_c, then
// every threshold refitted with the pooled noise; a transition cut by the sweep's end is located
// from the tail the sweep sees, with the pooled noise. Points of equal u are pooled first.
// Thresholds the sweep did not cross are extrapolated from the fitted line (not into the sweep
// when the data put them beyond its end) and marked unmeasured. With one threshold crossed no gain can
// be seen and the slope is taken as 1. Errors (InvalidArgument) when the sweep is empty, codes
// fall outside the mode's range, no threshold was crossed, or the fitted thresholds rise by less
// than 0.05 or more than 20 LSB per code (a column that does not convert).
absl::StatusOr<ColumnFit> FitColumn(absl::Span<const SweepPoint> points, AdcMode mode, int adc_bits);

// INL/DNL summary of a set of index-space thresholds (all taken as measured). Used to compute
// the same figures for a known true curve, and by FitColumn.
void ComputeLinearity(ColumnFit& fit);

// Standard normal CDF.
double NormalCdf(double x);

}  // namespace pim::calibration
