#pragma once

// Private to the Asio-based transports (tcp, serial): a byte stream with a persistent
// asynchronous read into a host-side buffer and timed writes, all on one io_context that runs
// only inside the calling thread's Write/Read. No Asio type leaves drivers/src.

#include <chrono>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include <utility>  // boost 1.74 asio/awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace pim::drivers::internal {

template <typename Stream>
class AsioStream {
 public:
  AsioStream(boost::asio::io_context& io, Stream& stream, std::string name)
      : io_(io), stream_(stream), name_(std::move(name)), chunk_(16384) {}

  ~AsioStream() { Close(); }

  void Start() { ReadLoop(); }

  void Close() {
    if (closing_) return;
    closing_ = true;
    boost::system::error_code ignored;
    stream_.close(ignored);
    // Let the aborted handlers run now, while `this` is alive.
    io_.restart();
    io_.poll(ignored);
  }

  absl::Status Write(absl::Span<const uint8_t> bytes, absl::Duration timeout) {
    if (!error_.ok()) return error_;
    bool done = false;
    boost::system::error_code result;
    boost::asio::async_write(stream_, boost::asio::buffer(bytes.data(), bytes.size()),
                             [&](const boost::system::error_code& ec, size_t) {
                               done = true;
                               result = ec;
                             });
    RunUntil([&] { return done; }, timeout);
    if (!done) {
      // Cancel, then wait for the handler: it refers to locals of this frame.
      boost::system::error_code ignored;
      stream_.cancel(ignored);
      RunUntil([&] { return done; }, absl::Seconds(5));
      return absl::DeadlineExceededError(absl::StrCat(name_, ": writing ", bytes.size(),
                                                      " bytes did not finish within ",
                                                      absl::FormatDuration(timeout),
                                                      " (device not reading?)"));
    }
    if (result) {
      error_ = absl::UnavailableError(absl::StrCat(name_, ": write failed: ", result.message()));
      return error_;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<size_t> Read(absl::Span<uint8_t> buffer, absl::Duration timeout) {
    if (rx_.empty() && error_.ok()) RunUntil([&] { return !rx_.empty() || !error_.ok(); }, timeout);
    if (rx_.empty()) {
      if (!error_.ok()) return error_;
      return size_t{0};
    }
    const size_t n = std::min(buffer.size(), rx_.size());
    std::copy_n(rx_.begin(), n, buffer.begin());
    rx_.erase(rx_.begin(), rx_.begin() + ptrdiff_t(n));
    return n;
  }

 private:
  void ReadLoop() {
    stream_.async_read_some(boost::asio::buffer(chunk_), [this](const boost::system::error_code& ec, size_t n) {
      if (!ec) {
        rx_.insert(rx_.end(), chunk_.begin(), chunk_.begin() + ptrdiff_t(n));
        ReadLoop();
      } else if (ec == boost::asio::error::operation_aborted && !closing_) {
        ReadLoop();  // a cancelled write took the read with it
      } else if (!closing_) {
        error_ = absl::UnavailableError(absl::StrCat(
            name_, ec == boost::asio::error::eof ? ": device closed the connection" : ": read failed: ",
            ec == boost::asio::error::eof ? "" : ec.message()));
      }
    });
  }

  template <typename Pred>
  void RunUntil(Pred done, absl::Duration timeout) {
    const auto deadline = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(timeout);
    io_.restart();
    while (!done()) {
      if (io_.run_one_until(deadline) == 0) break;  // timed out, or nothing left to run
    }
  }

  boost::asio::io_context& io_;
  Stream& stream_;
  std::string name_;
  std::vector<uint8_t> chunk_;
  std::deque<uint8_t> rx_;
  absl::Status error_;
  bool closing_ = false;
};

}  // namespace pim::drivers::internal
