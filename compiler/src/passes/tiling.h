#pragma once

#include "pim/runtime/chip_spec.h"

namespace pim::compiler {

// Physical columns one output of a b_w-bit weight takes: ceil(b_w / cell_bits) for native and
// bit_serial, 2 * ceil((b_w - 1) / cell_bits) for differential (magnitude bits, + and - columns).
// Same as runtime::ColumnsPerWeight (the loader checks tiles against it).
int ColumnsPerOutput(runtime::Scheme scheme, int weight_bits, int cell_bits);

}  // namespace pim::compiler
