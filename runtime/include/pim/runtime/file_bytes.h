#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace pim::runtime {

// The whole content of `path`. NotFound "<path>: cannot open <what> (<reason>)", InvalidArgument
// "<path>: is a directory, not a <what>", or DataLoss on a read error.
absl::StatusOr<std::string> ReadFileBytes(const std::string& path, const std::string& what);

}  // namespace pim::runtime
