#include "pim/drivers/tcp_transport.h"

#include <optional>

#include "asio_stream.h"

namespace pim::drivers {

namespace asio = boost::asio;
using asio::ip::tcp;

struct TcpTransport::Impl {
  asio::io_context io;
  tcp::socket socket{io};
  std::optional<internal::AsioStream<tcp::socket>> stream;
};

TcpTransport::TcpTransport(std::string name, std::unique_ptr<Impl> impl)
    : name_(std::move(name)), impl_(std::move(impl)) {}

TcpTransport::~TcpTransport() {
  if (impl_ && impl_->stream) impl_->stream->Close();
}

absl::StatusOr<std::unique_ptr<TcpTransport>> TcpTransport::Connect(const std::string& host, uint16_t port,
                                                                    absl::Duration timeout) {
  const std::string name = absl::StrCat("tcp://", host.find(':') != std::string::npos ? "[" + host + "]" : host,
                                        ":", port);
  try {
    auto impl = std::make_unique<Impl>();
    tcp::resolver resolver(impl->io);
    boost::system::error_code ec;
    bool done = false;
    tcp::resolver::results_type endpoints;
    resolver.async_resolve(host, std::to_string(port),
                           [&](const boost::system::error_code& e, tcp::resolver::results_type r) {
                             ec = e;
                             endpoints = std::move(r);
                             done = true;
                           });
    const auto deadline = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(timeout);
    while (!done && impl->io.run_one_until(deadline) > 0) {
    }
    if (!done) {
      resolver.cancel();
      impl->io.restart();
      impl->io.run();
      return absl::DeadlineExceededError(absl::StrCat(name, ": resolving '", host, "' took longer than ",
                                                      absl::FormatDuration(timeout)));
    }
    if (ec) return absl::UnavailableError(absl::StrCat(name, ": cannot resolve '", host, "': ", ec.message()));
    done = false;
    asio::async_connect(impl->socket, endpoints, [&](const boost::system::error_code& e, const tcp::endpoint&) {
      ec = e;
      done = true;
    });
    impl->io.restart();
    while (!done && impl->io.run_one_until(deadline) > 0) {
    }
    if (!done) {
      boost::system::error_code ignored;
      impl->socket.close(ignored);
      impl->io.restart();
      impl->io.run();
      return absl::DeadlineExceededError(absl::StrCat(name, ": no connection within ",
                                                      absl::FormatDuration(timeout)));
    }
    if (ec) return absl::UnavailableError(absl::StrCat(name, ": cannot connect: ", ec.message()));
    impl->socket.set_option(tcp::no_delay(true), ec);
    impl->stream.emplace(impl->io, impl->socket, name);
    impl->stream->Start();
    return std::unique_ptr<TcpTransport>(new TcpTransport(name, std::move(impl)));
  } catch (const std::exception& e) {
    // Asio reports resource exhaustion by exception; it stops here.
    return absl::InternalError(absl::StrCat(name, ": ", e.what()));
  }
}

absl::Status TcpTransport::Write(absl::Span<const uint8_t> bytes, absl::Duration timeout) {
  try {
    return impl_->stream->Write(bytes, timeout);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(name_, ": ", e.what()));
  }
}

absl::StatusOr<size_t> TcpTransport::Read(absl::Span<uint8_t> buffer, absl::Duration timeout) {
  try {
    return impl_->stream->Read(buffer, timeout);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(name_, ": ", e.what()));
  }
}

}  // namespace pim::drivers
