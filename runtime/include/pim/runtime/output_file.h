#pragma once

#include <string>

#include "absl/status/status.h"

namespace pim::runtime {

// Checks, before any work is done, that `path` (named by `option`, e.g. "--output") can be
// created: not empty, not a directory, and its directory exists and is writable. The error names
// the option, the path and the reason: "--output /no/such/dir/x.npy: directory '/no/such/dir'
// does not exist". The tools call it first so a long run never ends in a write error.
absl::Status CheckOutputFile(const std::string& option, const std::string& path);

}  // namespace pim::runtime
