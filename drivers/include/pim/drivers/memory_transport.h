#pragma once

#include <memory>
#include <string>
#include <utility>

#include "pim/drivers/transport.h"

namespace pim::drivers {

// Two Transports joined back to back in memory: what one writes the other reads. For unit
// tests of the Link and the device engine without an operating-system pipe. Destroying one end
// makes the other's calls fail with Unavailable. Each end may be used from its own thread.
std::pair<std::unique_ptr<Transport>, std::unique_ptr<Transport>> MakeMemoryTransportPair(
    const std::string& name);

}  // namespace pim::drivers
