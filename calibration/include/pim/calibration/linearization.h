#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "pim/proto/chip.pb.h"
#include "pim/proto/program.pb.h"
#include "pim/runtime/backend.h"

namespace pim::calibration {

using runtime::Backend;
using runtime::InputBatch;
using runtime::LayerMapping;
using runtime::Scheme;

// Linearization of raw ADC codes with a measured calibration (`pimcal adc`,
// docs/calibration.md): each code of a column is replaced, before digital accumulation, by the
// centre of the input interval that produces it on that column, in LSB of the ideal quantizer
// (p / Delta). On an ideal column that is the code itself, so an ideal calibration changes
// nothing. Code tables are kept per (macro, column, ADC bits, signed or unsigned mode).
//
// Immutable after it is built; thread-safe to share.
class Linearization {
 public:
  // Values of codes lo, lo+1, ..., hi of one column, or null when the calibration lacks it.
  const std::vector<double>* Find(int macro, int column, int adc_bits, bool signed_codes) const;

  // Adds the table of one column; `values` has 2^adc_bits entries.
  void Add(int macro, int column, int adc_bits, bool signed_codes, std::vector<double> values);

  size_t size() const { return tables_.size(); }
  std::string device_serial;  // the chip it was measured on

 private:
  std::map<std::tuple<int, int, int, bool>, std::vector<double>> tables_;
};

// The physical column (within its macro) that performs conversion `conversion` of output
// `output` (0-based within the tile) of a tile placed at `placement`: every output occupies
// placement.columns / outputs adjacent columns; its ADC sits on the first of them, and for the
// differential scheme the negative conversion (index 1) on the first of the second half. The
// simulator, the calibration sweep and the linearization share this convention
// (docs/calibration.md, docs/chip-model.md).
int ConversionColumn(const runtime::TilePlacement& placement, int tile_outputs, runtime::Scheme scheme,
                     int output, int conversion);

// Code values of one column from its effective thresholds (code-index space, 2^b - 1 values,
// nondecreasing): interior code lo + i -> lo + (t[i-1] + t[i]) / 2; the end codes lie half a
// mean code width beyond their one threshold.
std::vector<double> CodeValuesFromThresholds(absl::Span<const double> thresholds, int lo);

// Checks a calibration (every column: 1..15 bits, a known mode, 2^b - 1 nondecreasing thresholds
// within a full scale of the ideal ones, finite figures, noise and gain not negative, unmeasured
// indices in range and distinct, no (macro, column, bits, mode) twice) and builds its tables.
// `origin` prefixes every message.
absl::StatusOr<Linearization> LinearizationFromCalibration(const proto::Calibration& calibration,
                                                           const std::string& origin);

// Reads a binary Calibration file (`pimcal adc -o chip.cal.pb`) and validates it as above. When
// `ref` is not null it receives the file's identity for a Program's BnCalibrationRecord: `path`
// as given, the SHA-256 of the bytes read, and the calibration's device serial.
absl::StatusOr<proto::Calibration> ReadCalibrationFile(const std::string& path,
                                                       proto::AdcCalibrationRef* ref = nullptr);

// As Backend::RunLayer, but accumulates linearized code values in double: sums[m][o] is
// sum over the layer's conversions of value(code) (times 2^j for bit-serial plane j, and
// positive minus negative column for differential). Every code is looked up on the column that
// converted it (placement.column_offset + output * columns-per-output, plus half of that for the
// negative differential conversion). Errors: a missing table (naming the layer, tile, macro,
// column, bits and mode) or the backend's error.
absl::Status RunLayerLinearized(Backend& backend, const LayerMapping& layer, const InputBatch& inputs,
                                const Linearization& linearization, absl::Span<double> sums);

}  // namespace pim::calibration
