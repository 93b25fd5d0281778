#pragma once

#include "pim/compiler/compiler.h"
#include "pim/runtime/chip_spec.h"

namespace pim::compiler {

// What every pass may read besides the module: the command-line options and the target chip.
struct PassContext {
  const CompileOptions& options;
  const runtime::ChipSpec& target;
};

}  // namespace pim::compiler
