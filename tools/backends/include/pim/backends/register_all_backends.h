#pragma once

#include "absl/status/status.h"
#include "pim/runtime/backend_registry.h"

namespace pim::backends {

// Registers every backend of this build into `registry`: "sim" always; "usb", "serial" and
// "tcp" when the drivers are built. Call once per registry; AlreadyExists if called twice.
absl::Status RegisterAllBackends(runtime::BackendRegistry& registry);

}  // namespace pim::backends
