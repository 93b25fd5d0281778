#pragma once

// Shared by the compiler's unit tests: paths of the synthetic models and the default target.
#include <string>

#include "absl/status/statusor.h"
#include "pim/runtime/chip_file.h"
#include "pim/runtime/chip_spec.h"

namespace pim::compiler::testing {

inline std::string ModelPath(const std::string& name) {
  return std::string(PIM_SOURCE_DIR) + "/tests/data/onnx/" + name;
}

inline runtime::ChipSpec DefaultTarget() {
  absl::StatusOr<proto::ChipFile> file = runtime::ReadChipFile(std::string(PIM_SOURCE_DIR) + "/sim/chips/default.textproto");
  if (!file.ok()) std::abort();
  absl::StatusOr<runtime::ChipSpec> spec = runtime::ChipSpecFromProto(file->spec());
  if (!spec.ok()) std::abort();
  return *spec;
}

}  // namespace pim::compiler::testing
