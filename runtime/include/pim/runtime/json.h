#pragma once

// The few JSON pieces the tools print (pimc inspect --json, pimrun --json): no JSON library, the
// output is written field by field.

#include <string>

#include "pim/proto/program.pb.h"

namespace pim::runtime {

// A JSON string literal: quotes, backslash and control characters escaped.
std::string JsonString(const std::string& s);

// A JSON number with every digit of a double ("%.17g"); null for inf and NaN.
std::string JsonNumber(double v);

// A Program's BN calibration record (pimcal bn): device, serial, data, samples, the BatchNorm
// steps re-estimated, and the ADC calibration file the statistics were measured through (null on
// raw codes).
std::string BnCalibrationRecordJson(const proto::BnCalibrationRecord& record);

}  // namespace pim::runtime
