#include "pim/calibration/linearization.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "pim/runtime/file_bytes.h"
#include "pim/runtime/sha256.h"
#include "pim/runtime/tile_accumulation.h"

namespace pim::calibration {

int ConversionColumn(const runtime::TilePlacement& placement, int tile_outputs, runtime::Scheme scheme, int output,
                     int conversion) {
  const int per_output = tile_outputs > 0 ? placement.columns / tile_outputs : 0;
  const int conv_columns = scheme == runtime::Scheme::kDifferential ? 2 : 1;
  return placement.column_offset + output * per_output + (conversion % conv_columns) * (per_output / conv_columns);
}

const std::vector<double>* Linearization::Find(int macro, int column, int adc_bits, bool signed_codes) const {
  auto it = tables_.find({macro, column, adc_bits, signed_codes});
  return it == tables_.end() ? nullptr : &it->second;
}

void Linearization::Add(int macro, int column, int adc_bits, bool signed_codes, std::vector<double> values) {
  tables_[{macro, column, adc_bits, signed_codes}] = std::move(values);
}

std::vector<double> CodeValuesFromThresholds(absl::Span<const double> t, int lo) {
  const size_t n = t.size();
  std::vector<double> values(n + 1);
  // The end codes are open intervals; give them the mean width of the interior ones.
  const double width = n >= 2 && t[n - 1] > t[0] ? (t[n - 1] - t[0]) / double(n - 1) : 1.0;
  if (n == 0) return {double(lo)};
  values[0] = lo + t[0] - 0.5 * width;
  for (size_t i = 1; i < n; ++i) values[i] = lo + 0.5 * (t[i - 1] + t[i]);
  values[n] = lo + t[n - 1] + 0.5 * width;
  return values;
}

absl::StatusOr<Linearization> LinearizationFromCalibration(const proto::Calibration& cal, const std::string& origin) {
  Linearization lin;
  lin.device_serial = cal.device_serial();
  std::set<std::tuple<uint32_t, uint32_t, uint32_t, int>> seen;
  for (int k = 0; k < cal.columns_size(); ++k) {
    const proto::ColumnTransfer& c = cal.columns(k);
    const std::string at = absl::StrCat(origin, ": columns[", k, "] (macro ", c.macro(), ", column ", c.column(), ")");
    const uint32_t bits = c.adc_bits() != 0 ? c.adc_bits() : cal.adc_bits();
    if (bits < 1 || bits > 15) return absl::InvalidArgumentError(absl::StrCat(at, ": adc_bits ", bits, " outside 1..15"));
    if (c.mode() != proto::ADC_MODE_SIGNED && c.mode() != proto::ADC_MODE_UNSIGNED) {
      return absl::InvalidArgumentError(absl::StrCat(at, ": mode ", int(c.mode()), " is neither signed nor unsigned"));
    }
    if (c.macro() > 4095 || c.column() > 65535) {
      return absl::InvalidArgumentError(absl::StrCat(at, ": macro/column index out of range"));
    }
    const int need = (1 << bits) - 1;
    if (c.thresholds_size() != need) {
      return absl::InvalidArgumentError(
          absl::StrCat(at, ": ", c.thresholds_size(), " thresholds, a ", bits, "-bit ADC has ", need));
    }
    // Index space: the ideal thresholds are 0.5 .. need - 0.5; a measured one lies within a
    // full scale of them (anything further is a damaged file, and would overflow the code values).
    const double lowest = -double(need + 1), highest = 2.0 * double(need + 1);
    for (int i = 0; i < need; ++i) {
      if (!(c.thresholds(i) >= lowest && c.thresholds(i) <= highest)) {
        return absl::InvalidArgumentError(absl::StrCat(at, ": threshold ", i, " is ", c.thresholds(i), ", outside [",
                                                       lowest, ", ", highest, "]"));
      }
      if (i > 0 && c.thresholds(i) < c.thresholds(i - 1)) {
        return absl::InvalidArgumentError(absl::StrCat(at, ": threshold ", i, " (", c.thresholds(i),
                                                       ") below threshold ", i - 1, " (", c.thresholds(i - 1), ")"));
      }
    }
    for (double v : {c.noise_sigma_lsb(), c.gain(), c.offset_lsb(), c.inl_max_lsb(), c.inl_rms_lsb(),
                     c.dnl_max_lsb(), c.dnl_rms_lsb()}) {
      if (!std::isfinite(v)) return absl::InvalidArgumentError(absl::StrCat(at, ": a figure is ", v));
    }
    if (c.noise_sigma_lsb() < 0) {
      return absl::InvalidArgumentError(absl::StrCat(at, ": noise_sigma_lsb ", c.noise_sigma_lsb(), " is negative"));
    }
    if (c.gain() < 0) return absl::InvalidArgumentError(absl::StrCat(at, ": gain ", c.gain(), " is negative"));
    std::set<uint32_t> unmeasured;
    for (uint32_t i : c.unmeasured_thresholds()) {
      if (int64_t(i) >= need || !unmeasured.insert(i).second) {
        return absl::InvalidArgumentError(absl::StrCat(at, ": unmeasured threshold index ", i,
                                                       int64_t(i) >= need ? " out of range" : " listed twice"));
      }
    }
    if (!seen.insert({c.macro(), c.column(), bits, int(c.mode())}).second) {
      return absl::InvalidArgumentError(absl::StrCat(at, ": listed twice for ", bits, "-bit ",
                                                     c.mode() == proto::ADC_MODE_SIGNED ? "signed" : "unsigned"));
    }
    const bool is_signed = c.mode() == proto::ADC_MODE_SIGNED;
    const int lo = is_signed ? -(1 << (bits - 1)) : 0;
    lin.Add(int(c.macro()), int(c.column()), int(bits), is_signed,
            CodeValuesFromThresholds(absl::MakeConstSpan(c.thresholds().data(), c.thresholds_size()), lo));
  }
  return lin;
}

absl::StatusOr<proto::Calibration> ReadCalibrationFile(const std::string& path, proto::AdcCalibrationRef* ref) {
  absl::StatusOr<std::string> read = runtime::ReadFileBytes(path, "calibration file");
  if (!read.ok()) return read.status();
  const std::string& bytes = *read;
  proto::Calibration cal;
  if (!cal.ParseFromString(bytes)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a Calibration protobuf (pimcal adc -o writes one)"));
  }
  if (cal.columns_size() == 0) return absl::InvalidArgumentError(absl::StrCat(path, ": calibration has no columns"));
  if (absl::StatusOr<Linearization> lin = LinearizationFromCalibration(cal, path); !lin.ok()) return lin.status();
  if (ref != nullptr) {
    ref->set_path(path);
    // The bytes the linearization is built from, so the hash identifies exactly what was used.
    ref->set_sha256(runtime::Sha256Hex(bytes));
    ref->set_device_serial(cal.device_serial());
  }
  return cal;
}

absl::Status RunLayerLinearized(Backend& backend, const LayerMapping& layer, const InputBatch& inputs,
                                const Linearization& lin, absl::Span<double> sums) {
  if (absl::Status s = runtime::CheckLayerBatch(layer, inputs, sums.size()); !s.ok()) return s;
  const int m_count = inputs.vectors;
  std::fill(sums.begin(), sums.end(), 0.0);
  const bool signed_codes = layer.scheme != Scheme::kDifferential;
  const int lo = signed_codes ? -(1 << (layer.adc_bits - 1)) : 0;
  const int levels = 1 << layer.adc_bits;
  const int conversions = ConversionsPerOutput(layer.scheme, layer.input_bits);
  std::vector<uint8_t> tile_inputs;
  std::vector<int16_t> codes;
  std::vector<const std::vector<double>*> tables;
  for (const runtime::TileSpec& tile : layer.tiles) {
    const int outputs = tile.outputs();
    // One table per (output, conversion column) of the tile.
    tables.assign(size_t(outputs) * 2, nullptr);
    for (int o = 0; o < outputs; ++o) {
      for (int half = 0; half < (layer.scheme == Scheme::kDifferential ? 2 : 1); ++half) {
        const int column = ConversionColumn(tile.placement, outputs, layer.scheme, o, half);
        const std::vector<double>* t = lin.Find(tile.placement.macro, column, layer.adc_bits, signed_codes);
        if (t == nullptr || int(t->size()) != levels) {
          return absl::NotFoundError(absl::StrCat(
              "layer '", layer.name, "' tile ", tile.id, ": the calibration has no ", layer.adc_bits, "-bit ",
              signed_codes ? "signed" : "unsigned", " curve for macro ", tile.placement.macro, " column ", column,
              " (measure it with pimcal adc --adc-bits ", layer.adc_bits, ")"));
        }
        tables[size_t(o) * 2 + size_t(half)] = t;
      }
    }
    runtime::GatherTileInputs(inputs, tile, 0, m_count, &tile_inputs);
    InputBatch batch{tile_inputs.data(), m_count, tile.rows(), inputs.input_bits, inputs.first_sample};
    codes.assign(size_t(m_count) * size_t(outputs) * size_t(conversions), 0);
    if (absl::Status s = backend.RunTile(tile.id, batch, absl::MakeSpan(codes)); !s.ok()) return s;
    auto value = [&](int o, int half, int16_t code) {
      const int index = std::clamp(int(code) - lo, 0, levels - 1);
      return (*tables[size_t(o) * 2 + size_t(half)])[size_t(index)];
    };
    runtime::AccumulateTileCodes(layer.scheme, conversions, tile, layer.out_channels, 0, m_count,
                                 codes.data(), value, sums.data());
  }
  return absl::OkStatus();
}

}  // namespace pim::calibration
