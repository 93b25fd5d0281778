#include "pim/sim/adc_model.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "check.h"
#include "pim/sim/noise.h"

namespace pim::sim {
namespace {

// Field tags that keep the per-column random draws independent of each other.
enum : uint64_t { kTagGain = 1, kTagOffset = 2, kTagDnl = 3 };

uint64_t ColumnKey(uint64_t seed, uint64_t tag, int macro, int column) {
  uint64_t k = HashCombine(Mix64(seed ^ 0x616463ULL /* "adc" */), tag);
  return HashCombine(k, (uint64_t(uint32_t(macro)) << 32) | uint32_t(column));
}

}  // namespace

AdcRange CodeRange(runtime::Scheme scheme, int adc_bits) {
  PIM_SIM_CHECK(adc_bits >= 1 && adc_bits <= 16, "adc_bits %d", adc_bits);
  if (scheme == runtime::Scheme::kDifferential) return {0, (1 << adc_bits) - 1};
  return {-(1 << (adc_bits - 1)), (1 << (adc_bits - 1)) - 1};
}

int IdealAdcCode(int64_t p, double step, AdcRange range, bool* saturated) {
  const double q = std::nearbyint(static_cast<double>(p) / step);
  bool sat = false;
  int code;
  if (q < range.lo) {
    code = range.lo;
    sat = true;
  } else if (q > range.hi) {
    code = range.hi;
    sat = true;
  } else {
    code = static_cast<int>(q);
  }
  if (saturated != nullptr) *saturated = sat;
  return code;
}

int ColumnCurve::CodeIndex(double index) const {
  // The number of thresholds <= index (bounds_ is -inf, the nondecreasing thresholds, +inf).
  // Noise makes every branch on the index a coin flip, so neither way below branches on it: up
  // to 5 bits a vectorized count of all the thresholds, above that a binary search whose
  // log2(count + 1) steps are conditional moves.
  const double* b = bounds_.data();
  const int count = static_cast<int>(bounds_.size()) - 2;
  if (count <= kCountedThresholds) {
    int below = 0;
    for (int k = 1; k <= count; ++k) below += b[k] <= index;
    return below;
  }
  int i = 0;
  for (int len = count + 1; len > 1;) {
    const int half = len / 2;
    i = b[i + half] <= index ? i + half : i;
    len -= half;
  }
  return i;
}

int ColumnCurve::Convert(int64_t p, double step, AdcRange range, uint64_t noise_key,
                         bool* saturated) const {
  if (ideal_) return IdealAdcCode(p, step, range, saturated);
  double v = gain_ * (static_cast<double>(p) / step) + offset_lsb_;
  if (noise_sigma_lsb_ > 0) v += noise_sigma_lsb_ * StandardNormal(noise_key);
  const double index = v - range.lo;
  if (saturated != nullptr) *saturated = Saturated(index, range);
  return range.lo + CodeIndex(index);
}

int ColumnCurve::ConvertWithEstimate(int64_t p, double step, AdcRange range, uint64_t noise_key,
                                     double normal_estimate, bool* saturated) const {
  if (ideal_ || !(noise_sigma_lsb_ > 0)) return Convert(p, step, range, noise_key, saturated);
  // Convert's arithmetic with the estimate: `clean` is the same double; v = clean + sigma * n
  // differs from Convert's by at most sigma * kStandardNormalEstimateError plus one rounding of
  // each (an ulp of |v| <= |index| + |lo|), and index = v - lo by one more rounding of each. Where
  // a threshold or a full-scale edge lies within `margin` of the index (about one conversion in
  // 10^9), Convert decides.
  const double clean = gain_ * (static_cast<double>(p) / step) + offset_lsb_;
  const double index = clean + noise_sigma_lsb_ * normal_estimate - range.lo;
  const double margin = 2 * noise_sigma_lsb_ * kStandardNormalEstimateError +
                        1e-12 * (1.0 + std::abs(index) + std::abs(static_cast<double>(range.lo)));
  const int i = CodeIndex(index);
  const double full_scale = range.levels() - 0.5;
  const bool clear = bounds_[size_t(i)] <= index - margin && index + margin < bounds_[size_t(i) + 1] &&
                     std::abs(index + 0.5) > margin && std::abs(index - full_scale) > margin;
  if (!clear) return Convert(p, step, range, noise_key, saturated);
  if (saturated != nullptr) *saturated = Saturated(index, range);
  return range.lo + i;
}

AdcModel::AdcModel(NonIdealityParams params) : params_(std::move(params)) {
  ideal_ = params_.gain_sigma == 0 && params_.offset_sigma_lsb == 0 && params_.inl_bow_lsb == 0 &&
           params_.dnl_sigma_lsb == 0 && params_.noise_sigma_lsb == 0 && params_.columns.empty();
}

absl::StatusOr<ColumnCurve> AdcModel::Curve(int macro, int column, int adc_bits) const {
  ColumnCurve curve;
  if (ideal_) return curve;
  const int thresholds = (1 << adc_bits) - 1;
  for (const ColumnTable& table : params_.columns) {
    if (table.macro != macro || table.column != column) continue;
    if (static_cast<int>(table.thresholds.size()) != thresholds) {
      return absl::InvalidArgumentError(absl::StrCat(
          "profile '", params_.name, "' column (macro ", macro, ", column ", column, ") has ",
          table.thresholds.size(), " thresholds; a ", adc_bits, "-bit conversion needs ",
          thresholds));
    }
    curve.ideal_ = false;
    curve.SetThresholds(table.thresholds);
    curve.noise_sigma_lsb_ = table.noise_sigma_lsb;
    return curve;
  }
  const NonIdealityParams& p = params_;
  curve.ideal_ = false;
  curve.gain_ = 1.0 + p.gain_sigma * StandardNormal(ColumnKey(p.seed, kTagGain, macro, column));
  curve.offset_lsb_ = p.offset_sigma_lsb * StandardNormal(ColumnKey(p.seed, kTagOffset, macro, column));
  curve.noise_sigma_lsb_ = p.noise_sigma_lsb;
  std::vector<double> curve_thresholds(static_cast<size_t>(thresholds));
  const uint64_t dnl_key = HashCombine(ColumnKey(p.seed, kTagDnl, macro, column), adc_bits);
  const double levels = double(thresholds + 1);
  for (int i = 0; i < thresholds; ++i) {
    const double f = (i + 1) / levels;  // position of threshold i across the full scale
    double t = i + 0.5 + p.inl_bow_lsb * 4.0 * f * (1.0 - f);
    if (p.dnl_sigma_lsb > 0) t += p.dnl_sigma_lsb * StandardNormal(HashCombine(dnl_key, i));
    // Thresholds stay monotonic: a threshold pushed below its predecessor merges with it, which
    // is a missing code, as on a real SAR with large DNL.
    if (i > 0) t = std::max(t, curve_thresholds[size_t(i - 1)]);
    curve_thresholds[size_t(i)] = t;
  }
  curve.SetThresholds(curve_thresholds);
  return curve;
}

void ColumnCurve::SetThresholds(absl::Span<const double> thresholds) {
  bounds_.clear();
  bounds_.push_back(-std::numeric_limits<double>::infinity());
  bounds_.insert(bounds_.end(), thresholds.begin(), thresholds.end());
  bounds_.push_back(std::numeric_limits<double>::infinity());
}

}  // namespace pim::sim
