#pragma once

#include <string>

#include "absl/status/status.h"
#include "pim/calibration/adc_calibration.h"
#include "pim/proto/chip.pb.h"

namespace pim::calibration {

// The calibration file (proto::Calibration) of a measurement: one ColumnTransfer per measured
// (macro, column, ADC bits, mode), with the effective thresholds, fitted gain/offset, noise and
// INL/DNL figures, and the device's serial number and firmware version.
proto::Calibration CalibrationToProto(const AdcCalibration& result);

// Writes `calibration` in binary protobuf form to `path`. Errors name the path.
absl::Status WriteCalibrationFile(const proto::Calibration& calibration, const std::string& path);

}  // namespace pim::calibration
