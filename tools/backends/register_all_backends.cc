#include "pim/backends/register_all_backends.h"

#include "pim/sim/sim_backend.h"

namespace pim::backends {

absl::Status RegisterAllBackends(runtime::BackendRegistry& registry) {
  // The simulator is always there; it lists itself so --list-devices never comes back empty.
  return registry.Register("sim", sim::OpenSimBackend,
                           [] { return absl::StatusOr<std::vector<std::string>>(std::vector<std::string>{"sim"}); });
}

}  // namespace pim::backends
