#include "pim/drivers/serial_transport.h"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <set>

#include "asio_stream.h"

namespace pim::drivers {

namespace asio = boost::asio;

struct SerialTransport::Impl {
  asio::io_context io;
  asio::serial_port port{io};
  std::optional<internal::AsioStream<asio::serial_port>> stream;
};

SerialTransport::SerialTransport(std::string name, std::unique_ptr<Impl> impl)
    : name_(std::move(name)), impl_(std::move(impl)) {}

SerialTransport::~SerialTransport() {
  if (impl_ && impl_->stream) impl_->stream->Close();
}

absl::StatusOr<std::unique_ptr<SerialTransport>> SerialTransport::Open(const std::string& path, uint32_t baud) {
  const std::string name = absl::StrCat("serial:", path, "@", baud);
  try {
    auto impl = std::make_unique<Impl>();
    boost::system::error_code ec;
    impl->port.open(path, ec);
    if (ec) return absl::UnavailableError(absl::StrCat(name, ": cannot open: ", ec.message()));
    using sp = asio::serial_port_base;
    impl->port.set_option(sp::baud_rate(baud), ec);
    if (ec) return absl::InvalidArgumentError(absl::StrCat(name, ": baud rate ", baud, " refused: ", ec.message()));
    impl->port.set_option(sp::character_size(8), ec);
    if (!ec) impl->port.set_option(sp::parity(sp::parity::none), ec);
    if (!ec) impl->port.set_option(sp::stop_bits(sp::stop_bits::one), ec);
    if (!ec) impl->port.set_option(sp::flow_control(sp::flow_control::none), ec);
    if (ec) return absl::UnavailableError(absl::StrCat(name, ": cannot set 8N1 raw mode: ", ec.message()));
    impl->stream.emplace(impl->io, impl->port, name);
    impl->stream->Start();
    return std::unique_ptr<SerialTransport>(new SerialTransport(name, std::move(impl)));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(name, ": ", e.what()));
  }
}

absl::Status SerialTransport::Write(absl::Span<const uint8_t> bytes, absl::Duration timeout) {
  try {
    return impl_->stream->Write(bytes, timeout);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(name_, ": ", e.what()));
  }
}

absl::StatusOr<size_t> SerialTransport::Read(absl::Span<uint8_t> buffer, absl::Duration timeout) {
  try {
    return impl_->stream->Read(buffer, timeout);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(name_, ": ", e.what()));
  }
}

std::vector<std::string> ListSerialPorts() {
  namespace fs = std::filesystem;
  std::set<std::string> paths;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/dev/serial/by-id", ec)) {
    paths.insert(entry.path().string());
  }
  for (const auto& entry : fs::directory_iterator("/dev", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("ttyUSB", 0) == 0 || name.rfind("ttyACM", 0) == 0) paths.insert(entry.path().string());
  }
  std::vector<std::string> uris;
  for (const std::string& p : paths) uris.push_back("serial:" + p);
  return uris;
}

}  // namespace pim::drivers
