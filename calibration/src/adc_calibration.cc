#include "pim/calibration/adc_calibration.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "pim/calibration/linearization.h"

namespace pim::calibration {
namespace {

using runtime::Scheme;

// Relative spacing of the interleaved ADC step settings: an irrational-looking factor, so the
// grids u = p / step of different settings fall at different fractions of an LSB.
constexpr double kStepDither = 0.0317;
// The test patterns are 2-bit weights: codes -1, 0, +1.
constexpr int kPatternWeightBits = 2;
constexpr size_t kMaxTransferSamples = 600;

struct Sweep {
  // Partial sums p = 0..p_last, inputs u = sign * p / step.
  int sign = 1;
  double step = 1;
  int64_t p_last = 0;
};

// Everything measured for one (macro, mode, resolution): the points of every column.
using ColumnPoints = std::map<int, std::vector<SweepPoint>>;

std::vector<TransferSample> Downsample(const std::vector<SweepPoint>& points) {
  std::vector<TransferSample> out;
  const size_t stride = std::max<size_t>(1, (points.size() + kMaxTransferSamples - 1) / kMaxTransferSamples);
  for (size_t k = 0; k < points.size(); k += stride) {
    double sum = 0;
    for (int16_t c : points[k].codes) sum += c;
    out.push_back({points[k].u, sum / double(points[k].codes.size())});
  }
  return out;
}

class Sweeper {
 public:
  Sweeper(runtime::Backend& backend, const AdcCalibrationOptions& options)
      : backend_(backend), options_(options), spec_(backend.info().spec) {}

  // The input range swept for `mode` at `adc_bits`: |u| up to this many LSB.
  double MaxInput(AdcMode mode, int adc_bits) const {
    const double full = mode == AdcMode::kSigned ? (1 << (adc_bits - 1)) + 0.5 : (1 << adc_bits) - 0.5;
    return full * 1.1 + options_.margin_lsb;
  }

  int64_t MaxPartialSum() const { return int64_t(spec_.rows) * ((int64_t(1) << spec_.max_input_bits) - 1); }

  std::vector<Sweep> Sweeps(AdcMode mode, int adc_bits) const {
    std::vector<Sweep> sweeps;
    const double u_max = MaxInput(mode, adc_bits);
    const int64_t p_max = MaxPartialSum();
    // The all +1 pattern first, then all -1: the signed mode needs the negative half, and the
    // differential scheme's negative columns are only swept by the -1 pattern.
    for (int sign : {+1, -1}) {
      for (int j = 0; j < options_.step_settings; ++j) {
        const double step = double(p_max) / (u_max * (1 + j * kStepDither));
        const int64_t p_last = std::min<int64_t>(p_max, int64_t(std::ceil(u_max * step)));
        sweeps.push_back({sign, step, p_last});
      }
    }
    return sweeps;
  }

  // Column offsets and outputs per tile so that every column hosts an ADC in some tile.
  struct Layout {
    Scheme scheme;
    int per_weight;
    int per_conversion;
    std::vector<int> offsets;
  };
  Layout LayoutFor(AdcMode mode) const {
    Layout l;
    l.scheme = mode == AdcMode::kSigned ? Scheme::kNative : Scheme::kDifferential;
    l.per_weight = runtime::ColumnsPerWeight(l.scheme, kPatternWeightBits, spec_.cell_bits);
    l.per_conversion = mode == AdcMode::kSigned ? l.per_weight : l.per_weight / 2;
    for (int r = 0; r < l.per_conversion; ++r) {
      if ((spec_.columns - r) / l.per_weight > 0) l.offsets.push_back(r);
    }
    return l;
  }

  int64_t VectorsFor(AdcMode mode, int adc_bits) const {
    int64_t total = 0;
    for (const Sweep& s : Sweeps(mode, adc_bits)) total += (s.p_last + 1) * options_.repeats;
    return total * int64_t(LayoutFor(mode).offsets.size());
  }

  absl::Status Measure(int macro, AdcMode mode, int adc_bits, ColumnPoints* out) {
    const Layout layout = LayoutFor(mode);
    const int rows = spec_.rows;
    const int x_max = (1 << spec_.max_input_bits) - 1;
    for (int offset : layout.offsets) {
      const int outputs = (spec_.columns - offset) / layout.per_weight;
      runtime::TileImage image;
      image.scheme = layout.scheme;
      image.weight_bits = kPatternWeightBits;
      image.tile.id = options_.first_tile_id + uint32_t(next_tile_++);
      image.tile.k_begin = 0;
      image.tile.k_end = rows;
      image.tile.out_begin = 0;
      image.tile.out_end = outputs;
      image.tile.placement = {macro, options_.bank, 0, offset, outputs * layout.per_weight};
      const std::string what = absl::StrCat("ADC calibration, macro ", macro, ", ", AdcModeName(mode), " ",
                                            adc_bits, "-bit, column offset ", offset, ": ");
      int written_sign = 0;
      for (const Sweep& sweep : Sweeps(mode, adc_bits)) {
        if (sweep.sign != written_sign) {
          image.codes.assign(size_t(outputs) * size_t(rows), int8_t(sweep.sign));
          if (absl::Status s = backend_.WriteTile(image); !s.ok()) {
            return absl::Status(s.code(), absl::StrCat(what, "writing the test pattern: ", s.message()));
          }
          written_sign = sweep.sign;
        }
        if (absl::Status s = backend_.ConfigureAdc(image.tile.id, {adc_bits, sweep.step}); !s.ok()) {
          return absl::Status(s.code(), absl::StrCat(what, "setting ADC step ", sweep.step, ": ", s.message()));
        }
        // Which conversion of each output carries the swept partial sum.
        const int conversions = runtime::ConversionsPerOutput(layout.scheme, spec_.max_input_bits);
        const int swept = (mode == AdcMode::kUnsigned && sweep.sign < 0) ? 1 : 0;
        const double u_sign = mode == AdcMode::kSigned ? sweep.sign : 1.0;
        std::vector<uint8_t> inputs;
        std::vector<int16_t> codes;
        int64_t p = 0;
        while (p <= sweep.p_last) {
          const int64_t p_end = std::min<int64_t>(sweep.p_last + 1,
                                                  p + std::max<int64_t>(1, options_.batch_vectors / options_.repeats));
          const int vectors = int((p_end - p) * options_.repeats);
          inputs.assign(size_t(vectors) * size_t(rows), 0);
          for (int64_t q = p; q < p_end; ++q) {
            for (int r = 0; r < options_.repeats; ++r) {
              uint8_t* x = inputs.data() + size_t((q - p) * options_.repeats + r) * size_t(rows);
              // p = full rows of x_max plus one partial row; every weight is +-1.
              const int64_t full = q / x_max;
              for (int64_t k = 0; k < full; ++k) x[k] = uint8_t(x_max);
              if (full < rows) x[full] = uint8_t(q % x_max);
            }
          }
          codes.assign(size_t(vectors) * size_t(outputs) * size_t(conversions), 0);
          runtime::InputBatch batch{inputs.data(), vectors, rows, spec_.max_input_bits, next_sample_};
          if (absl::Status s = backend_.RunTile(image.tile.id, batch, absl::MakeSpan(codes)); !s.ok()) {
            return absl::Status(s.code(), absl::StrCat(what, "running partial sums ", p, "..", p_end - 1,
                                                       " at step ", sweep.step, ": ", s.message()));
          }
          next_sample_ += uint64_t(vectors);
          result_vectors_ += vectors;
          result_conversions_ += int64_t(vectors) * outputs * conversions;
          for (int o = 0; o < outputs; ++o) {
            const int column = ConversionColumn(image.tile.placement, outputs, layout.scheme, o, swept);
            std::vector<SweepPoint>& points = (*out)[column];
            for (int64_t q = p; q < p_end; ++q) {
              SweepPoint pt;
              pt.u = u_sign * double(q) / sweep.step;
              pt.codes.resize(options_.repeats);
              for (int r = 0; r < options_.repeats; ++r) {
                const size_t m = size_t((q - p) * options_.repeats + r);
                pt.codes[r] = codes[(m * size_t(outputs) + size_t(o)) * size_t(conversions) + size_t(swept)];
              }
              std::sort(pt.codes.begin(), pt.codes.end());
              points.push_back(std::move(pt));
            }
          }
          done_ += vectors;
          if (options_.progress) options_.progress(done_, total_);
          p = p_end;
        }
      }
    }
    return absl::OkStatus();
  }

  void set_total(int64_t total) { total_ = total; }
  int64_t vectors() const { return result_vectors_; }
  int64_t conversions() const { return result_conversions_; }

 private:
  runtime::Backend& backend_;
  const AdcCalibrationOptions& options_;
  const runtime::ChipSpec spec_;
  uint64_t next_sample_ = 0;
  int next_tile_ = 0;
  int64_t done_ = 0;
  int64_t total_ = 0;
  int64_t result_vectors_ = 0;
  int64_t result_conversions_ = 0;

 public:
  void set_first_sample(uint64_t s) { next_sample_ = s; }
};

}  // namespace

absl::StatusOr<AdcCalibration> CalibrateAdc(runtime::Backend& backend, const AdcCalibrationOptions& options,
                                             const std::string& device) {
  const runtime::ChipSpec& spec = backend.info().spec;
  AdcCalibration result;
  result.chip = backend.info();
  result.device = device;
  result.options = options;
  if (result.options.adc_bits.empty()) result.options.adc_bits = {spec.adc_bits};
  if (result.options.macros.empty()) {
    for (int m = 0; m < spec.macros; ++m) result.options.macros.push_back(m);
  }
  const AdcCalibrationOptions& opt = result.options;
  for (int b : opt.adc_bits) {
    if (b < 1 || b > spec.adc_bits) {
      return absl::InvalidArgumentError(
          absl::StrCat("ADC calibration: resolution ", b, " bits outside the chip's 1..", spec.adc_bits));
    }
  }
  for (int m : opt.macros) {
    if (m < 0 || m >= spec.macros) {
      return absl::InvalidArgumentError(
          absl::StrCat("ADC calibration: macro ", m, " outside the chip's 0..", spec.macros - 1));
    }
  }
  if (opt.modes.empty()) return absl::InvalidArgumentError("ADC calibration: no ADC mode to measure");
  if (opt.repeats < 2 || opt.repeats > 4096) {
    // The noise is measured from the spread of repeated conversions of one input.
    return absl::InvalidArgumentError(absl::StrCat("ADC calibration: repeats ", opt.repeats,
                                                   " outside 2..4096 (the noise needs repeated conversions)"));
  }
  if (opt.step_settings < 1 || opt.step_settings > 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("ADC calibration: step settings ", opt.step_settings, " outside 1..16"));
  }
  if (opt.bank < 0 || opt.bank >= spec.banks_per_macro) {
    return absl::InvalidArgumentError(
        absl::StrCat("ADC calibration: bank ", opt.bank, " outside the chip's 0..", spec.banks_per_macro - 1));
  }
  if (spec.max_weight_bits < kPatternWeightBits || spec.max_input_bits < 1 || spec.rows < 1) {
    return absl::FailedPreconditionError(absl::StrCat("ADC calibration: chip '", spec.name, "' takes ",
                                                      spec.max_weight_bits, "-bit weights; the test patterns need ",
                                                      kPatternWeightBits));
  }

  Sweeper sweeper(backend, opt);
  sweeper.set_first_sample(opt.first_sample);
  int64_t total = 0;
  for (int b : opt.adc_bits) {
    for (AdcMode mode : opt.modes) total += sweeper.VectorsFor(mode, b) * int64_t(opt.macros.size());
  }
  sweeper.set_total(total);

  for (int b : opt.adc_bits) {
    for (AdcMode mode : opt.modes) {
      for (int macro : opt.macros) {
        ColumnPoints points;
        if (absl::Status s = sweeper.Measure(macro, mode, b, &points); !s.ok()) return s;
        for (int column = 0; column < spec.columns; ++column) {
          auto it = points.find(column);
          if (it == points.end()) {
            result.unreachable.push_back(absl::StrCat(AdcModeName(mode), " ", b, "-bit macro ", macro, " column ", column));
            continue;
          }
          std::vector<SweepPoint>& pts = it->second;
          std::stable_sort(pts.begin(), pts.end(), [](const SweepPoint& x, const SweepPoint& y) { return x.u < y.u; });
          absl::StatusOr<ColumnFit> fit = FitColumn(pts, mode, b);
          if (!fit.ok()) {
            return absl::Status(fit.status().code(), absl::StrCat("ADC calibration, macro ", macro, " column ", column,
                                                                  " (", AdcModeName(mode), " ", b, "-bit): ",
                                                                  fit.status().message()));
          }
          AdcColumnResult col;
          col.macro = macro;
          col.column = column;
          col.fit = std::move(*fit);
          col.transfer = Downsample(pts);
          result.columns.push_back(std::move(col));
          pts.clear();
          pts.shrink_to_fit();
        }
      }
    }
  }
  result.vectors = sweeper.vectors();
  result.conversions = sweeper.conversions();
  return result;
}

}  // namespace pim::calibration
