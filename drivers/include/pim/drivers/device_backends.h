#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pim/drivers/device_backend.h"
#include "pim/runtime/backend_registry.h"

namespace pim::drivers {

// Registers the hardware backends into `registry`: "tcp", "serial" and "usb" (the latter only
// when this build has libusb), each a DeviceBackend over its transport, with listers for
// `--list-devices`. Link settings come from DeviceBackendOptionsFromEnvironment.
absl::Status RegisterDeviceBackends(runtime::BackendRegistry& registry);

// Defaults, overridden by the environment (documented in docs/protocol.md section 7):
//   PIM_LINK_TIMEOUT_MS   no-answer timeout (default 2000)
//   PIM_LINK_WINDOW       requests in flight (default 8)
//   PIM_LINK_MAX_FRAME    max frame bytes the host offers (default 16384)
//   PIM_LINK_ON_RESET     "reload" (default) or "fail"
//   PIM_LINK_VERIFY       "0" (default) or "1": read back every written tile
// InvalidArgument naming the variable and its value when one does not parse.
absl::StatusOr<DeviceBackendOptions> DeviceBackendOptionsFromEnvironment(const std::string& backend);

}  // namespace pim::drivers
