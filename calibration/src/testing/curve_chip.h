#pragma once

// A small virtual chip for the calibration tests: every column has an explicit transfer curve
// (gain, offset, thresholds, noise) written here, independently of the simulator's profile
// generator, so the fit is checked against truths it was not written from. The conversion is
// v = gain * p / step + offset + sigma * n; code = lo + #{thresholds <= v - lo}.

#include <algorithm>
#include <cstdint>
#include <functional>
#include <tuple>
#include <map>
#include <cmath>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "pim/runtime/backend.h"

namespace pim::calibration::testing {

struct TrueColumn {
  double gain = 1;
  double offset_lsb = 0;
  double noise_sigma_lsb = 0;
  std::vector<double> thresholds;  // code-index space, 2^b - 1 values
};

// Effective (gain and offset included) thresholds in code-index space of a mode with lowest
// code `lo`, which is what the calibration measures.
inline std::vector<double> EffectiveThresholds(const TrueColumn& c, int lo) {
  std::vector<double> t;
  for (double x : c.thresholds) t.push_back((x + lo - c.offset_lsb) / c.gain - lo);
  return t;
}

class CurveChip : public runtime::Backend {
 public:
  // `column_of(macro, column, adc_bits)` gives each column's truth; columns are the same in both
  // modes (a signed conversion is the converter shifted by 2^(b-1) codes).
  using ColumnFn = std::function<TrueColumn(int macro, int column, int adc_bits)>;

  CurveChip(runtime::ChipSpec spec, ColumnFn column_of, uint64_t seed)
      : column_of_(std::move(column_of)), seed_(seed) {
    info_.spec = std::move(spec);
    info_.backend = "test";
    info_.serial_number = "curve-chip";
    info_.firmware_version = "test";
  }

  const runtime::ChipInfo& info() const override { return info_; }

  absl::Status WriteTile(const runtime::TileImage& image) override {
    if (image.codes.size() != size_t(image.tile.rows()) * size_t(image.tile.outputs())) {
      return absl::InvalidArgumentError("curve chip: bad tile size");
    }
    tiles_[image.tile.id].image = image;
    return absl::OkStatus();
  }
  absl::Status ConfigureAdc(uint32_t tile_id, const runtime::AdcSetting& setting) override {
    auto it = tiles_.find(tile_id);
    if (it == tiles_.end()) return absl::NotFoundError(absl::StrCat("curve chip: tile ", tile_id));
    it->second.adc = setting;
    return absl::OkStatus();
  }
  absl::Status RunTile(uint32_t tile_id, const runtime::InputBatch& in, absl::Span<int16_t> codes) override {
    auto it = tiles_.find(tile_id);
    if (it == tiles_.end()) return absl::NotFoundError(absl::StrCat("curve chip: tile ", tile_id));
    const runtime::TileImage& im = it->second.image;
    const runtime::AdcSetting adc = it->second.adc;
    const int rows = im.tile.rows(), outputs = im.tile.outputs();
    const int conv = runtime::ConversionsPerOutput(im.scheme, in.input_bits);
    if (in.width != rows || codes.size() != size_t(in.vectors) * outputs * conv) {
      return absl::InvalidArgumentError("curve chip: bad batch");
    }
    const bool is_unsigned = im.scheme == runtime::Scheme::kDifferential;
    const int lo = is_unsigned ? 0 : -(1 << (adc.adc_bits - 1));
    const int per_output = im.tile.placement.columns / outputs;
    size_t at = 0;
    for (int m = 0; m < in.vectors; ++m) {
      const uint8_t* x = in.codes + size_t(m) * rows;
      for (int o = 0; o < outputs; ++o) {
        const int8_t* q = im.codes.data() + size_t(o) * rows;
        for (int c = 0; c < conv; ++c) {
          int64_t p = 0;
          int column = im.tile.placement.column_offset + o * per_output;
          for (int k = 0; k < rows; ++k) {
            int w = q[k];
            int xv = x[k];
            if (is_unsigned) w = c == 0 ? std::max(w, 0) : std::max(-w, 0);
            if (im.scheme == runtime::Scheme::kBitSerial) xv = (xv >> c) & 1;
            p += int64_t(w) * xv;
          }
          if (is_unsigned && c == 1) column += per_output / 2;
          const TrueColumn& truth = Column(im.tile.placement.macro, column, adc.adc_bits);
          double v = truth.gain * double(p) / adc.adc_step + truth.offset_lsb;
          if (truth.noise_sigma_lsb > 0) {
            v += truth.noise_sigma_lsb * Normal(seed_, tile_id, column, c, in.first_sample + m);
          }
          const auto pos = std::upper_bound(truth.thresholds.begin(), truth.thresholds.end(), v - lo);
          codes[at++] = int16_t(lo + int(pos - truth.thresholds.begin()));
        }
      }
    }
    return absl::OkStatus();
  }
  absl::StatusOr<runtime::Counters> ReadCounters() override { return runtime::Counters{}; }

  // A standard normal deviate keyed by the conversion (a murmur-style mix, Box-Muller); its own
  // generator, unrelated to the simulator's.
  static double Normal(uint64_t seed, uint32_t tile, int column, int plane, uint64_t sample) {
    auto mix = [](uint64_t z) {
      z ^= z >> 33;
      z *= 0xff51afd7ed558ccdULL;
      z ^= z >> 33;
      z *= 0xc4ceb9fe1a85ec53ULL;
      return z ^ (z >> 33);
    };
    const uint64_t k = mix(mix(mix(seed + tile) + uint64_t(column) * 131 + uint64_t(plane)) + sample);
    const double u1 = (double(mix(k + 1) >> 11) + 0.5) * 0x1.0p-53;
    const double u2 = (double(mix(k + 2) >> 11) + 0.5) * 0x1.0p-53;
    return std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
  }

  const TrueColumn& Column(int macro, int column, int adc_bits) {
    auto key = std::make_tuple(macro, column, adc_bits);
    auto it = cache_.find(key);
    if (it == cache_.end()) it = cache_.emplace(key, column_of_(macro, column, adc_bits)).first;
    return it->second;
  }

 private:
  struct Stored {
    runtime::TileImage image;
    runtime::AdcSetting adc;
  };
  runtime::ChipInfo info_;
  ColumnFn column_of_;
  uint64_t seed_;
  std::map<uint32_t, Stored> tiles_;
  std::map<std::tuple<int, int, int>, TrueColumn> cache_;
};

// A small chip for fast tests: one macro of `rows` x `columns`, 4-bit inputs.
inline runtime::ChipSpec SmallSpec(int macros = 1, int rows = 64, int columns = 8, int adc_bits = 7) {
  runtime::ChipSpec spec;
  spec.name = "calibration-test";
  spec.macros = macros;
  spec.banks_per_macro = 2;
  spec.rows = rows;
  spec.columns = columns;
  spec.cell_bits = 1;
  spec.adc_bits = adc_bits;
  spec.max_input_bits = 4;
  spec.max_weight_bits = 8;
  spec.max_bit_serial_input_bits = 8;
  return spec;
}

}  // namespace pim::calibration::testing
