#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "pim/calibration/adc_fit.h"
#include "pim/runtime/backend.h"

namespace pim::calibration {

// What `pimcal adc` measures and how (docs/calibration.md).
struct AdcCalibrationOptions {
  std::vector<int> adc_bits;  // resolutions to measure; empty: the chip's adc_bits
  std::vector<AdcMode> modes = {AdcMode::kSigned, AdcMode::kUnsigned};
  std::vector<int> macros;    // empty: every macro
  int repeats = 16;           // conversions per input point, to average the noise
  int step_settings = 4;      // ADC step settings interleaved so the sweep's grids do not coincide
  double margin_lsb = 3;      // sweep this far past full scale (plus 10% for gain errors)
  int bank = 0;               // weight bank the test patterns are written to (it is overwritten)
  uint32_t first_tile_id = 0xC0DE0000u;  // tile ids used by the calibration patterns
  uint64_t first_sample = 0;  // global sample index of the first conversion (keys the noise)
  int batch_vectors = 4096;   // input vectors per RunTile call
  // Called after every RunTile with (vectors done, vectors in total). May be empty.
  std::function<void(int64_t, int64_t)> progress;
};

// One (u, mean code) sample of a measured transfer curve, for plots.
struct TransferSample {
  double u = 0;
  double mean_code = 0;
};

// One column measured in one mode at one resolution.
struct AdcColumnResult {
  int macro = 0;
  int column = 0;
  ColumnFit fit;
  std::vector<TransferSample> transfer;  // mean code against u, at most ~600 samples
};

// The whole measurement. `columns` is ordered by (adc_bits, mode, macro, column).
struct AdcCalibration {
  runtime::ChipInfo chip;
  std::string device;  // the URI it was measured through, as given
  AdcCalibrationOptions options;
  std::vector<AdcColumnResult> columns;
  // Columns a mode cannot convert on (e.g. the last column in signed mode, when a weight takes
  // two columns and the ADC sits on the first): "<mode> macro M column C".
  std::vector<std::string> unreachable;
  int64_t conversions = 0;
  int64_t vectors = 0;
};

// Runs the sweep on `backend` and fits every column. Only Backend primitives are used
// (WriteTile, ConfigureAdc, RunTile), so it runs the same on every device. Overwrites the
// patterns' bank in every macro measured. Errors: an option out of range for the chip (naming
// it), a device failure (the device's status, prefixed with what was being measured), or a
// column whose sweep crossed no threshold.
absl::StatusOr<AdcCalibration> CalibrateAdc(runtime::Backend& backend, const AdcCalibrationOptions& options,
                                             const std::string& device);

}  // namespace pim::calibration
