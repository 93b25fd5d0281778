#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pim/runtime/backend.h"
#include "pim/runtime/chip_spec.h"
#include "pim/runtime/device_uri.h"

namespace pim::runtime {

// What the caller knows when it opens a device. Backends use what applies to them.
struct OpenOptions {
  // The chip the Program was compiled for: the simulator models it when the URI names no chip
  // file. Hardware backends ignore it (the handshake tells them the chip).
  std::optional<ChipSpec> target;
};

// Opens a device for a parsed URI of the factory's scheme.
using BackendFactory =
    std::function<absl::StatusOr<std::unique_ptr<Backend>>(const DeviceUri&, const OpenOptions&)>;

// Lists the URIs of attached devices of one scheme (for `pimrun --list-devices`).
using DeviceLister = std::function<absl::StatusOr<std::vector<std::string>>()>;

// Maps URI schemes ("sim", "usb", "serial", "tcp") to backend factories. Owned by the caller
// (a tool main fills it with RegisterAllBackends); there is no global instance and no static
// self-registration. Register everything first, then Open from one thread at a time.
class BackendRegistry {
 public:
  // AlreadyExists if `scheme` is registered; `lister` may be empty.
  absl::Status Register(const std::string& scheme, BackendFactory factory, DeviceLister lister = {});

  // Parses `uri` and calls its scheme's factory. Errors: a bad URI (InvalidArgument naming the
  // bad part), a scheme this build has no backend for (Unimplemented, listing the ones it has),
  // or the factory's own error.
  absl::StatusOr<std::unique_ptr<Backend>> Open(const std::string& uri, const OpenOptions& options = {}) const;

  bool Has(const std::string& scheme) const { return entries_.count(scheme) != 0; }
  std::vector<std::string> Schemes() const;

  // Attached devices of every scheme that has a lister, as URIs; failures of one lister are
  // reported as its entry "<scheme>: <error>".
  std::vector<std::string> ListDevices() const;

 private:
  struct Entry {
    BackendFactory factory;
    DeviceLister lister;
  };
  std::map<std::string, Entry> entries_;
};

}  // namespace pim::runtime
