#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "pim/proto/program.pb.h"
#include "pim/runtime/backend.h"
#include "pim/runtime/tensor.h"

namespace pim::calibration {

struct BnCalibrationOptions {
  int batch_size = 64;      // images per executor batch (results do not depend on it)
  std::string device;       // recorded in the Program (BnCalibrationRecord.device)
  std::string data;         // recorded: the calibration data file
  // Called as images pass: (BN layer index, BN layers, images done, images in this pass).
  std::function<void(int, int, int64_t, int64_t)> progress;
  // When set, PIM layers run through this (ExecutorOptions::run_layer), e.g. linearized with a
  // measured ADC calibration (`pimcal bn --calibration`): the statistics are then those of the
  // linearized chip, and the Program must be run with the same linearization.
  std::function<absl::Status(runtime::Backend&, const runtime::LayerMapping&, const runtime::InputBatch&,
                             absl::Span<double>)>
      run_layer;
  // The ADC calibration file `run_layer` linearizes with (ReadCalibrationFile's `ref`), recorded
  // as BnCalibrationRecord.adc_calibration; unset when the statistics are measured on raw codes.
  std::optional<proto::AdcCalibrationRef> adc_calibration;
};

// What one BatchNormalization step looked like before and after.
struct BnLayerChange {
  std::string name;
  std::vector<double> old_mean, old_var;
  std::vector<double> new_mean, new_var;
};

struct BnCalibration {
  proto::Program program;  // the input Program with re-estimated BN statistics and the record
  std::vector<BnLayerChange> layers;
};

// Batch-norm calibration on the chip (docs/calibration.md): for every BatchNorm step in Program order, runs
// the calibration `inputs` through the Program up to that step's input on `backend`, with every
// earlier BatchNorm step already re-estimated, and replaces the step's mean and var with the
// per-channel mean and unbiased variance of the chip's own pre-BN values (over samples and
// spatial positions). scale, bias and epsilon are kept. Each pass runs only the steps the BN
// input depends on. The result records device (options.device and backend->info().serial_number),
// data, samples, layers and options.adc_calibration in Program.bn_calibration.
//
// Errors: a Program without BatchNorm steps (FailedPrecondition), inputs that do not fit the
// Program (the executor's error), a device failure (prefixed with the BN step being calibrated).
absl::StatusOr<BnCalibration> CalibrateBatchNorm(const proto::Program& program, runtime::Backend* backend,
                                                 const std::map<std::string, runtime::Tensor>& inputs,
                                                 const BnCalibrationOptions& options);

// Whether running `program` with the linearization `linearization` (null: raw codes) matches how
// its BN statistics were measured (BnCalibrationRecord.adc_calibration): statistics measured
// through a linearization already absorb the chip's gain and offset, so running them without it,
// or running statistics measured on raw codes with one, corrects the same errors twice or not at
// all (docs/calibration.md). OK when the Program has no BN calibration record, or when both are
// unset, or both name files with the same SHA-256; otherwise FailedPrecondition saying what the
// statistics were measured through and what the run uses, prefixed with `origin`.
absl::Status CheckLinearizationMatchesBnCalibration(const proto::Program& program,
                                                    const proto::AdcCalibrationRef* linearization,
                                                    const std::string& origin);

// The Program of steps [0, end_step) that `target` (a value name) depends on, with `target` as
// its only output and load phases listing only the layers kept.
proto::Program ProgramUpTo(const proto::Program& program, int end_step, const std::string& target);

}  // namespace pim::calibration
