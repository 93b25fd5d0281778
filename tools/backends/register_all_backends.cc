#include "pim/backends/register_all_backends.h"

#include "pim/drivers/device_backends.h"
#include "pim/sim/sim_backend.h"

namespace pim::backends {

absl::Status RegisterAllBackends(runtime::BackendRegistry& registry) {
  // The simulator is always there; it lists itself so --list-devices never comes back empty.
  absl::Status s = registry.Register(
      "sim", sim::OpenSimBackend,
      [] { return absl::StatusOr<std::vector<std::string>>(std::vector<std::string>{"sim"}); });
  if (!s.ok()) return s;
  return drivers::RegisterDeviceBackends(registry);  // tcp, serial, usb
}

}  // namespace pim::backends
