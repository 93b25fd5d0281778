#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace pim::drivers {

// A byte pipe to a device: USB bulk endpoints, a serial port, a TCP socket, or a test double.
// The Link above it does framing, ordering and retries; a Transport only moves bytes, in order,
// possibly losing or damaging some. Every call returns within its timeout (implementations use
// asynchronous I/O with timers; none blocks in a read). Errors name the transport
// (`name()`) and what failed. Not thread-safe: one caller (the Link) at a time.
class Transport {
 public:
  virtual ~Transport() = default;

  // Writes all of `bytes`. DeadlineExceeded if they are not all accepted within `timeout`;
  // Unavailable if the device is gone.
  virtual absl::Status Write(absl::Span<const uint8_t> bytes, absl::Duration timeout) = 0;

  // Waits up to `timeout` for data and copies what is there (at most buffer.size() bytes).
  // Returns the number of bytes read: 0 when the timeout passed without data. Unavailable if the
  // device is gone or closed the connection.
  virtual absl::StatusOr<size_t> Read(absl::Span<uint8_t> buffer, absl::Duration timeout) = 0;

  // The device URI or a description, for messages ("tcp://127.0.0.1:5555").
  virtual const std::string& name() const = 0;
};

}  // namespace pim::drivers
