#pragma once

#include "ir/module.h"

namespace pim::compiler {

// The full-range rule of docs/onnx-convention.md 3.2 for a layer whose scheme, rows, ADC bits and
// input bits are resolved: P_max / code_max, or 1 when P_max = 0. Exposed for tests.
double FullRangeAdcStep(const ir::MatrixOp& layer);

}  // namespace pim::compiler
