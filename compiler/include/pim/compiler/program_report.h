#pragma once

#include <string>

#include "pim/proto/program.pb.h"

namespace pim::compiler {

struct ReportOptions {
  bool json = false;       // machine-readable JSON instead of text
  bool tiles = false;      // list every tile (pimc inspect)
  bool host_steps = false; // list host steps (pimc inspect)
};

// Human- (or script-) readable description of a Program: per matrix layer its placement and
// reason, scheme, R, ADC bits, Delta and rule, tiles, macros/banks and load phases; the BN
// calibration record (device, data, layers, the ADC calibration file it was measured through); totals
// (array utilization, reload plan, predicted cycles and energy). Works on any Program that
// parsed; fields are printed as stored, without validation. Deterministic output.
std::string FormatProgramReport(const proto::Program& program, const ReportOptions& options);

}  // namespace pim::compiler
