#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace pim::runtime {

// A parsed device URI (docs/protocol.md). Accepted forms:
//   sim                                  the simulator with the Program's target chip, ideal
//   sim:profile=<file>[,seed=<N>]        the simulator with a chip file (spec + non-ideality
//                                        profile); seed overrides the profile's seed
//   sim:seed=<N>                         (options may come in any order)
//   usb0, usb1, ...                      the n-th attached device (usb = usb0)
//   usb:<vid>:<pid>[:<serial>]           vid/pid in hex (1..4 digits, optional 0x)
//   serial:<path>[@<baud>]               baud defaults to the driver's
//   tcp://<host>:<port>                  host name, IPv4 or [IPv6]; port 1..65535
// Only the fields of `scheme` are set.
struct DeviceUri {
  std::string text;    // as given
  std::string scheme;  // "sim", "usb", "serial", "tcp"

  // sim
  std::string profile_path;
  std::optional<uint64_t> seed;

  // usb: either an index or vendor/product ids
  std::optional<int> usb_index;
  std::optional<uint16_t> vendor_id;
  std::optional<uint16_t> product_id;
  std::string usb_serial;

  // serial
  std::string serial_path;
  std::optional<uint32_t> baud;

  // tcp
  std::string host;
  uint16_t port = 0;
};

// Parses `text`; the error quotes the URI and names the bad part.
absl::StatusOr<DeviceUri> ParseDeviceUri(const std::string& text);

}  // namespace pim::runtime
