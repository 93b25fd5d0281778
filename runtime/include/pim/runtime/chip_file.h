#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "pim/proto/chip.pb.h"

namespace pim::runtime {

// Reads a text-format chip file (proto::ChipFile, see sim/chips/) and validates its spec: every
// size, bit-width and timing field in range. Errors name the file, the field and the value.
absl::StatusOr<proto::ChipFile> ReadChipFile(const std::string& path);

// Validates a text-format chip file already in memory; `origin` names it in errors.
absl::StatusOr<proto::ChipFile> ParseChipFile(const std::string& text, const std::string& origin);

// The directory of bundled chip files (sim/chips in the source tree, configurable with the
// PIM_CHIPS_DIR environment variable) and the default target inside it.
std::string ChipsDirectory();
std::string DefaultChipFilePath();

}  // namespace pim::runtime
