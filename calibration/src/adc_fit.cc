#include "pim/calibration/adc_fit.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "absl/strings/str_cat.h"

namespace pim::calibration {
namespace {

constexpr double kMinProbability = 1e-12;
constexpr double kMinSlope = 0.05;  // thresholds per code, in LSB: 20x gain
constexpr double kMaxSlope = 20;

double NormalPdf(double x) { return std::exp(-0.5 * x * x) / std::sqrt(2.0 * std::numbers::pi); }

// Number of codes in `codes` (sorted) strictly above `code`.
int CountAbove(const std::vector<int16_t>& codes, int code) {
  return int(codes.end() - std::upper_bound(codes.begin(), codes.end(), int16_t(code)));
}

struct Binomial {
  double u;
  int y;  // conversions with code above the threshold
  int n;  // conversions
};

// One threshold's probit maximum-likelihood fit, P(above | u) = Phi(a + b u), by iteratively
// reweighted least squares from (theta0, s0). Returns false when it does not converge to a
// finite, increasing curve (e.g. the data are separable: no noise visible at this resolution).
bool ProbitFit(const std::vector<Binomial>& data, double theta0, double s0, double* theta, double* s) {
  double b = 1.0 / s0;
  double a = -theta0 * b;
  for (int iter = 0; iter < 100; ++iter) {
    double sw = 0, swu = 0, swuu = 0, swz = 0, swuz = 0;
    for (const Binomial& d : data) {
      const double eta = a + b * d.u;
      const double p = std::clamp(NormalCdf(eta), kMinProbability, 1 - kMinProbability);
      const double phi = std::max(NormalPdf(eta), 1e-300);
      const double w = d.n * phi * phi / (p * (1 - p));
      const double z = eta + (double(d.y) / d.n - p) / phi;
      if (!std::isfinite(w) || !std::isfinite(z) || w <= 0) continue;
      sw += w;
      swu += w * d.u;
      swuu += w * d.u * d.u;
      swz += w * z;
      swuz += w * d.u * z;
    }
    const double det = sw * swuu - swu * swu;
    if (!(det > 0)) return false;
    const double nb = (sw * swuz - swu * swz) / det;
    const double na = (swz - nb * swu) / sw;
    if (!std::isfinite(na) || !std::isfinite(nb) || nb <= 0 || nb > 1e6) return false;
    const double change = std::abs(na - a) + std::abs(nb - b) * (1 + std::abs(theta0));
    a = na;
    b = nb;
    if (change < 1e-10 * (1 + std::abs(a))) break;
  }
  *theta = -a / b;
  *s = 1.0 / b;
  return std::isfinite(*theta) && std::isfinite(*s);
}

struct KnownNoiseFit {
  double theta;
  bool converged;  // false: the information vanished (theta is the start) or 100 steps did not settle
};

// The maximum-likelihood threshold when the noise width is known (Fisher scoring in theta).
KnownNoiseFit ThresholdWithKnownNoise(const std::vector<Binomial>& data, double theta0, double s) {
  double theta = theta0;
  for (int iter = 0; iter < 100; ++iter) {
    double score = 0, info = 0;
    for (const Binomial& d : data) {
      const double eta = (d.u - theta) / s;
      const double p = std::clamp(NormalCdf(eta), kMinProbability, 1 - kMinProbability);
      const double phi = NormalPdf(eta);
      score += -(phi / s) * (d.y / p - (d.n - d.y) / (1 - p));
      info += d.n * phi * phi / (s * s * p * (1 - p));
    }
    if (!(info > 0)) return {theta0, false};
    // The score is dlogL/dtheta; ascend it.
    double step = score / info;
    step = std::clamp(step, -s, s);
    theta += step;
    if (std::abs(step) < 1e-12) return {theta, true};
  }
  return {theta, false};
}

// Points of equal input are one measurement (in unsigned mode every step setting converts u = 0):
// their conversions are pooled, so that no decision of the fit rests on a fraction of them.
std::vector<SweepPoint> PoolEqualInputs(absl::Span<const SweepPoint> points) {
  std::vector<SweepPoint> pooled;
  for (const SweepPoint& pt : points) {
    if (!pooled.empty() && pooled.back().u == pt.u) {
      std::vector<int16_t>& codes = pooled.back().codes;
      const ptrdiff_t middle = ptrdiff_t(codes.size());
      codes.insert(codes.end(), pt.codes.begin(), pt.codes.end());
      std::inplace_merge(codes.begin(), codes.begin() + middle, codes.end());
    } else {
      pooled.push_back(pt);
    }
  }
  return pooled;
}

}  // namespace

const char* AdcModeName(AdcMode mode) { return mode == AdcMode::kSigned ? "signed" : "unsigned"; }

int LowestCode(AdcMode mode, int adc_bits) { return mode == AdcMode::kSigned ? -(1 << (adc_bits - 1)) : 0; }

int HighestCode(AdcMode mode, int adc_bits) {
  return mode == AdcMode::kSigned ? (1 << (adc_bits - 1)) - 1 : (1 << adc_bits) - 1;
}

double NormalCdf(double x) { return 0.5 * std::erfc(-x / std::numbers::sqrt2); }

void ComputeLinearity(ColumnFit& fit) {
  const int count = int(fit.thresholds.size());
  if (fit.measured.size() != fit.thresholds.size()) fit.measured.assign(count, true);
  // Least-squares line through the measured thresholds against the ideal (i + 0.5).
  double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (int i = 0; i < count; ++i) {
    if (!fit.measured[i]) continue;
    const double x = i + 0.5, y = fit.thresholds[i];
    n += 1;
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  if (n >= 2 && n * sxx - sx * sx > 0) {
    fit.slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
    fit.intercept = (sy - fit.slope * sx) / n;
  } else {
    // One threshold: no gain can be seen; take the ideal LSB.
    fit.slope = 1;
    fit.intercept = n > 0 ? (sy - sx) / n : 0;
  }
  const int lo = LowestCode(fit.mode, fit.adc_bits);
  fit.gain = 1.0 / fit.slope;
  fit.offset_lsb = lo - fit.gain * (fit.intercept + lo);
  fit.inl_lsb.assign(count, 0);
  fit.dnl_lsb.assign(std::max(count - 1, 0), 0);
  double inl_max = 0, inl_ss = 0, dnl_max = 0, dnl_ss = 0;
  int inl_n = 0, dnl_n = 0;
  for (int i = 0; i < count; ++i) {
    if (!fit.measured[i]) continue;
    const double inl = (fit.thresholds[i] - (fit.slope * (i + 0.5) + fit.intercept)) / fit.slope;
    fit.inl_lsb[i] = inl;
    inl_max = std::max(inl_max, std::abs(inl));
    inl_ss += inl * inl;
    ++inl_n;
    if (i > 0 && fit.measured[i - 1]) {
      const double dnl = (fit.thresholds[i] - fit.thresholds[i - 1]) / fit.slope - 1;
      fit.dnl_lsb[i - 1] = dnl;
      dnl_max = std::max(dnl_max, std::abs(dnl));
      dnl_ss += dnl * dnl;
      ++dnl_n;
    }
  }
  fit.inl_max_lsb = inl_max;
  fit.inl_rms_lsb = inl_n ? std::sqrt(inl_ss / inl_n) : 0;
  fit.dnl_max_lsb = dnl_max;
  fit.dnl_rms_lsb = dnl_n ? std::sqrt(dnl_ss / dnl_n) : 0;
}

absl::StatusOr<ColumnFit> FitColumn(absl::Span<const SweepPoint> points, AdcMode mode, int adc_bits) {
  if (adc_bits < 1 || adc_bits > 15) {
    return absl::InvalidArgumentError(absl::StrCat("FitColumn: ADC resolution ", adc_bits, " bits outside 1..15"));
  }
  if (points.empty()) return absl::InvalidArgumentError("FitColumn: the sweep has no points");
  const int lo = LowestCode(mode, adc_bits);
  const int hi = HighestCode(mode, adc_bits);
  for (size_t k = 0; k < points.size(); ++k) {
    const SweepPoint& pt = points[k];
    if (pt.codes.empty() || !std::isfinite(pt.u)) {
      return absl::InvalidArgumentError(absl::StrCat("FitColumn: sweep point ", k, " (u = ", pt.u,
                                                     ") has no conversions or a non-finite input"));
    }
    if (!std::is_sorted(pt.codes.begin(), pt.codes.end())) {
      return absl::InvalidArgumentError(absl::StrCat("FitColumn: sweep point ", k, ": codes not sorted"));
    }
    if (pt.codes.front() < lo || pt.codes.back() > hi) {
      return absl::InvalidArgumentError(absl::StrCat("FitColumn: sweep point ", k, " (u = ", pt.u, "): code ",
                                                     pt.codes.front() < lo ? pt.codes.front() : pt.codes.back(),
                                                     " outside the ", adc_bits, "-bit ", AdcModeName(mode),
                                                     " range [", lo, ", ", hi, "]"));
    }
    if (k > 0 && pt.u < points[k - 1].u) {
      return absl::InvalidArgumentError(absl::StrCat("FitColumn: sweep point ", k, ": inputs not in ascending order"));
    }
  }
  const std::vector<SweepPoint> sweep = PoolEqualInputs(points);
  const int count = (1 << adc_bits) - 1;
  const int npts = int(sweep.size());
  // Running max of the largest code from the left and running min of the smallest code from the
  // right locate each threshold's transition region by binary search.
  std::vector<int> prefix_max(npts), suffix_min(npts);
  for (int k = 0; k < npts; ++k) {
    prefix_max[k] = std::max<int>(k ? prefix_max[k - 1] : lo, sweep[k].codes.back());
  }
  for (int k = npts - 1; k >= 0; --k) {
    suffix_min[k] = std::min<int>(k + 1 < npts ? suffix_min[k + 1] : hi, sweep[k].codes.front());
  }

  ColumnFit fit;
  fit.adc_bits = adc_bits;
  fit.mode = mode;
  fit.thresholds.assign(count, 0);
  fit.measured.assign(count, false);
  fit.threshold_sigma.assign(count, 0);
  std::vector<std::vector<Binomial>> windows(count);
  std::vector<bool> separable(count, false);
  // Where the data put a threshold the sweep did not bracket: -1 below its start, +1 above its end.
  std::vector<int> beyond(count, 0);
  std::vector<double> resolved_sigmas;

  for (int i = 0; i < count; ++i) {
    const int code = lo + i;  // "above" means code > lo + i
    // First point with any code above, last point with any code at or below.
    const int first = int(std::upper_bound(prefix_max.begin(), prefix_max.end(), code) - prefix_max.begin());
    const int last = int(std::upper_bound(suffix_min.begin(), suffix_min.end(), code) - suffix_min.begin()) - 1;
    if (first >= npts || last < 0) {  // never crossed: above or below the sweep
      beyond[i] = first >= npts ? +1 : -1;
      continue;
    }
    const int a = std::max(first - 1, 0);
    const int b = std::min(std::max(last + 1, first), npts - 1);
    std::vector<Binomial>& data = windows[i];
    for (int k = a; k <= b; ++k) {
      const int n = int(sweep[k].codes.size());
      data.push_back({sweep[k].u, CountAbove(sweep[k].codes, code), n});
    }
    const double f_first = double(data.front().y) / data.front().n;
    const double f_last = double(data.back().y) / data.back().n;
    if (f_first >= 0.5 || f_last <= 0.5) {  // the transition is cut by the sweep's end
      beyond[i] = f_first >= 0.5 ? -1 : +1;
      continue;
    }
    // Moment estimates: the area above the empirical CDF locates the threshold, and
    // integral F(1 - F) du = s / sqrt(pi) for a Gaussian width s.
    double theta0 = data.front().u, spread = 0;
    bool interior = false;
    int interior_points = 0;
    for (size_t k = 0; k + 1 < data.size(); ++k) {
      const double f0 = double(data[k].y) / data[k].n, f1 = double(data[k + 1].y) / data[k + 1].n;
      const double du = data[k + 1].u - data[k].u;
      theta0 += (1 - 0.5 * (f0 + f1)) * du;
      const double n = data[k].n;
      const double unbias = n > 1 ? n / (n - 1) : 1;
      spread += 0.5 * (f0 * (1 - f0) * unbias + f1 * (1 - f1) * unbias) * du;
    }
    for (const Binomial& d : data) {
      if (d.y > 0 && d.y < d.n) {
        interior = true;
        ++interior_points;
      }
    }
    // Separable data: every point is all-below or all-above, and the all-below points all lie
    // left of the all-above points. The threshold is then only known to lie between them.
    double max_below = -INFINITY, min_above = INFINITY;
    for (const Binomial& d : data) {
      if (d.y == 0) max_below = std::max(max_below, d.u);
      if (d.y == d.n) min_above = std::min(min_above, d.u);
    }
    fit.measured[i] = true;
    if (!interior && max_below < min_above) {
      separable[i] = true;
      fit.thresholds[i] = 0.5 * (max_below + min_above);
      continue;
    }
    const double s0 = std::max(spread * std::sqrt(std::numbers::pi), 1e-3);
    double theta = theta0, s = s0;
    if (ProbitFit(data, theta0, s0, &theta, &s) && theta > data.front().u && theta < data.back().u) {
      fit.thresholds[i] = theta;
      fit.threshold_sigma[i] = s;
      // The width is resolved when several points sit inside the transition.
      if (interior_points >= 3) resolved_sigmas.push_back(s);
    } else {
      fit.thresholds[i] = theta0;
    }
  }

  double pooled = 0;
  if (!resolved_sigmas.empty()) {
    std::nth_element(resolved_sigmas.begin(), resolved_sigmas.begin() + resolved_sigmas.size() / 2,
                     resolved_sigmas.end());
    pooled = resolved_sigmas[resolved_sigmas.size() / 2];
  }
  fit.resolved_thresholds = int(resolved_sigmas.size());
  // With one noise width for the column, each threshold is a one-parameter fit: much steadier
  // where only a few points fall inside its transition.
  if (pooled > 0) {
    for (int i = 0; i < count; ++i) {
      if (!fit.measured[i] || separable[i]) continue;
      fit.thresholds[i] = ThresholdWithKnownNoise(windows[i], fit.thresholds[i], pooled).theta;
    }
    // A transition cut by the sweep's end (in unsigned mode the first threshold often lies near
    // or below u = 0, where the sweep starts) still shows its tail: with the noise known, the
    // tail locates the threshold if the fit converges within two noise widths of the sweep and a
    // point within three noise widths of it has conversions on both sides (a stray code far
    // away is no tail).
    for (int i = 0; i < count; ++i) {
      const std::vector<Binomial>& data = windows[i];
      if (beyond[i] == 0 || data.empty()) continue;
      const double edge = beyond[i] < 0 ? data.front().u : data.back().u;
      const KnownNoiseFit tail = ThresholdWithKnownNoise(data, edge, pooled);
      if (!tail.converged || !std::isfinite(tail.theta) || tail.theta <= data.front().u - 2 * pooled ||
          tail.theta >= data.back().u + 2 * pooled) {
        continue;
      }
      const bool seen = std::any_of(data.begin(), data.end(), [&](const Binomial& d) {
        return d.y > 0 && d.y < d.n && std::abs(d.u - tail.theta) <= 3 * pooled;
      });
      if (!seen) continue;
      fit.thresholds[i] = tail.theta;
      fit.measured[i] = true;
      beyond[i] = 0;
    }
  }

  int measured = 0;
  for (int i = 0; i < count; ++i) {
    if (fit.measured[i]) {
      fit.thresholds[i] -= lo;  // u -> code-index space
      ++measured;
    }
  }
  if (measured == 0) {
    return absl::InvalidArgumentError(absl::StrCat("FitColumn: the sweep crossed none of the ", count,
                                                   " thresholds (codes ", sweep.front().codes.front(), "..",
                                                   sweep.back().codes.back(), " over u = ", sweep.front().u,
                                                   "..", sweep.back().u, ")"));
  }
  ComputeLinearity(fit);
  // A column whose thresholds do not rise with the input (stuck, or all at one point) does not
  // convert; its gain would be infinite or absurd and its figures NaN.
  if (!(fit.slope >= kMinSlope && fit.slope <= kMaxSlope)) {
    return absl::InvalidArgumentError(absl::StrCat("FitColumn: the thresholds rise by ", fit.slope,
                                                   " LSB per code (ideal 1, accepted ", kMinSlope, "..", kMaxSlope,
                                                   "): the column does not convert"));
  }
  fit.noise_sigma_lsb = pooled * fit.gain;
  // Thresholds outside the sweep: on the fitted line, but not inside the sweep where the data
  // showed them to lie beyond it; then kept in order.
  const double sweep_first = sweep.front().u - lo, sweep_last = sweep.back().u - lo;
  for (int i = 0; i < count; ++i) {
    if (fit.measured[i]) continue;
    fit.thresholds[i] = fit.slope * (i + 0.5) + fit.intercept;
    if (beyond[i] < 0) fit.thresholds[i] = std::min(fit.thresholds[i], sweep_first);
    if (beyond[i] > 0) fit.thresholds[i] = std::max(fit.thresholds[i], sweep_last);
  }
  for (int i = 1; i < count; ++i) fit.thresholds[i] = std::max(fit.thresholds[i], fit.thresholds[i - 1]);
  return fit;
}

}  // namespace pim::calibration
