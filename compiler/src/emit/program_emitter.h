#pragma once

#include "ir/module.h"
#include "pim/proto/program.pb.h"
#include "pim/runtime/chip_spec.h"

namespace pim::compiler {

// Turns a fully processed module into a Program. Deterministic: fields are written in step and
// tile order only (no hash-map iteration), and nothing depends on time or the environment.
proto::Program EmitProgram(const ir::Module& module, const runtime::ChipSpec& target);

}  // namespace pim::compiler
