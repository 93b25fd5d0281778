#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pim/drivers/transport.h"

namespace pim::drivers {

// A chip attached to another host (or pim-emu --listen) over TCP, with Boost.Asio kept inside
// the implementation. Nagle is off: the link sends whole frames and waits for answers.
class TcpTransport : public Transport {
 public:
  // Resolves and connects within `timeout`. Unavailable naming host:port and the reason.
  static absl::StatusOr<std::unique_ptr<TcpTransport>> Connect(const std::string& host, uint16_t port,
                                                               absl::Duration timeout);
  ~TcpTransport() override;

  absl::Status Write(absl::Span<const uint8_t> bytes, absl::Duration timeout) override;
  absl::StatusOr<size_t> Read(absl::Span<uint8_t> buffer, absl::Duration timeout) override;
  const std::string& name() const override { return name_; }

 private:
  struct Impl;
  TcpTransport(std::string name, std::unique_ptr<Impl> impl);
  std::string name_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pim::drivers
