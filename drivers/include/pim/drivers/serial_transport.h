#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pim/drivers/transport.h"

namespace pim::drivers {

constexpr uint32_t kDefaultBaud = 921600;

// A chip on a UART (or pim-emu --pty) through Boost.Asio's serial_port: raw 8N1, no flow
// control, the given baud rate; asynchronous reads and writes with timers, never a blocking
// read. Asio stays inside the implementation.
class SerialTransport : public Transport {
 public:
  // Opens `path` at `baud`. Unavailable naming the path and the system's reason.
  static absl::StatusOr<std::unique_ptr<SerialTransport>> Open(const std::string& path, uint32_t baud);
  ~SerialTransport() override;

  absl::Status Write(absl::Span<const uint8_t> bytes, absl::Duration timeout) override;
  absl::StatusOr<size_t> Read(absl::Span<uint8_t> buffer, absl::Duration timeout) override;
  const std::string& name() const override { return name_; }

 private:
  struct Impl;
  SerialTransport(std::string name, std::unique_ptr<Impl> impl);
  std::string name_;
  std::unique_ptr<Impl> impl_;
};

// Serial ports that look like a lab board: /dev/serial/by-id/* (their targets), /dev/ttyUSB*,
// /dev/ttyACM*, as "serial:<path>" URIs.
std::vector<std::string> ListSerialPorts();

}  // namespace pim::drivers
