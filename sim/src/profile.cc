#include "pim/sim/profile.h"

#include <cmath>
#include <filesystem>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "pim/proto/chip.pb.h"
#include "pim/runtime/chip_file.h"

namespace pim::sim {
namespace {

absl::Status Range(const std::string& origin, const std::string& field, double v, double lo, double hi) {
  if (std::isfinite(v) && v >= lo && v <= hi) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(origin, ": profile field '", field, "' is ", v,
                                                 ", must be in [", lo, ", ", hi, "]"));
}

}  // namespace

absl::StatusOr<NonIdealityParams> ProfileFromProto(const proto::NonIdealityProfile& in,
                                                   const runtime::ChipSpec& spec,
                                                   const std::string& origin) {
  struct Field {
    const char* name;
    double value, lo, hi;
  };
  // Bounds: beyond them the "ADC" no longer resembles a converter (gain off by half, offsets
  // and noise of a quarter of a 7-bit range).
  const Field fields[] = {
      {"gain_sigma", in.gain_sigma(), 0, 0.5},
      {"offset_sigma_lsb", in.offset_sigma_lsb(), 0, 32},
      {"inl_bow_lsb", in.inl_bow_lsb(), -32, 32},
      {"dnl_sigma_lsb", in.dnl_sigma_lsb(), 0, 4},
      {"noise_sigma_lsb", in.noise_sigma_lsb(), 0, 16},
  };
  for (const Field& f : fields) {
    if (absl::Status s = Range(origin, f.name, f.value, f.lo, f.hi); !s.ok()) return s;
  }
  NonIdealityParams out;
  out.name = in.name().empty() ? "ideal" : in.name();
  out.seed = in.seed();
  out.gain_sigma = in.gain_sigma();
  out.offset_sigma_lsb = in.offset_sigma_lsb();
  out.inl_bow_lsb = in.inl_bow_lsb();
  out.dnl_sigma_lsb = in.dnl_sigma_lsb();
  out.noise_sigma_lsb = in.noise_sigma_lsb();
  std::set<std::pair<int, int>> seen;
  for (int i = 0; i < in.columns_size(); ++i) {
    const proto::ColumnTransfer& c = in.columns(i);
    const std::string at = absl::StrCat("columns[", i, "].");
    if (absl::Status s = Range(origin, at + "macro", c.macro(), 0, spec.macros - 1); !s.ok()) return s;
    if (absl::Status s = Range(origin, at + "column", c.column(), 0, spec.columns - 1); !s.ok()) return s;
    if (absl::Status s = Range(origin, at + "noise_sigma_lsb", c.noise_sigma_lsb(), 0, 16); !s.ok()) return s;
    if (!seen.insert({int(c.macro()), int(c.column())}).second) {
      return absl::InvalidArgumentError(absl::StrCat(origin, ": profile field '", at,
                                                     "column' repeats macro ", c.macro(), " column ", c.column()));
    }
    const int n = c.thresholds_size();
    bool size_ok = false;
    for (int b = 1; b <= spec.adc_bits; ++b) size_ok |= n == (1 << b) - 1;
    if (!size_ok) {
      return absl::InvalidArgumentError(absl::StrCat(origin, ": profile field '", at, "thresholds' has ", n,
                                                     " values, must be 2^b - 1 for b in 1..", spec.adc_bits));
    }
    if (c.adc_bits() != 0 && n != (1 << c.adc_bits()) - 1) {
      return absl::InvalidArgumentError(absl::StrCat(origin, ": profile field '", at, "adc_bits' is ", c.adc_bits(),
                                                     " but thresholds has ", n, " values"));
    }
    ColumnTable t;
    t.macro = int(c.macro());
    t.column = int(c.column());
    t.noise_sigma_lsb = c.noise_sigma_lsb();
    for (int k = 0; k < n; ++k) {
      const double v = c.thresholds(k);
      const std::string field = absl::StrCat(at, "thresholds[", k, "]");
      if (absl::Status s = Range(origin, field, v, -1e6, 1e6); !s.ok()) return s;
      if (k > 0 && v < c.thresholds(k - 1)) {
        return absl::InvalidArgumentError(absl::StrCat(origin, ": profile field '", field, "' is ", v,
                                                       ", below the previous threshold ", c.thresholds(k - 1),
                                                       " (thresholds must be nondecreasing)"));
      }
      t.thresholds.push_back(v);
    }
    out.columns.push_back(std::move(t));
  }
  return out;
}

std::string ResolveProfilePath(const std::string& name_or_path) {
  std::error_code ec;
  if (std::filesystem::exists(name_or_path, ec)) return name_or_path;
  if (name_or_path.find('/') == std::string::npos) {
    const std::string bundled = runtime::ChipsDirectory() + "/" + name_or_path +
                                (name_or_path.ends_with(".textproto") ? "" : ".textproto");
    if (std::filesystem::exists(bundled, ec)) return bundled;
  }
  return name_or_path;
}

}  // namespace pim::sim
