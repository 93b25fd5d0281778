#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "pim/drivers/frame.h"
#include "pim/drivers/transport.h"
#include "pim/proto/wire.pb.h"

namespace pim::drivers {

struct LinkOptions {
  uint32_t max_frame_bytes = kDefaultMaxFrameBytes;  // host preference; the device may lower it
  uint32_t window = 8;                               // requests in flight; the device may lower it
  // A call fails with DeadlineExceeded when no valid frame came from the device for this long.
  absl::Duration timeout = absl::Seconds(2);
  // Retransmission timeout: RFC 6298 estimate from measured round trips, clamped to
  // [min_rto, timeout]; `initial_rto` until the first measurement.
  absl::Duration initial_rto = absl::Milliseconds(250);
  absl::Duration min_rto = absl::Milliseconds(20);
  int max_transmissions = 16;  // of one request, before giving up
  std::string host = "pim";    // sent in the Hello, for device logs
};

// Counters of one Link, cumulative over its life (and across re-handshakes).
struct LinkStats {
  uint64_t requests = 0;              // distinct requests sent
  uint64_t responses = 0;             // distinct responses accepted
  uint64_t retransmissions = 0;       // timeout-driven
  uint64_t fast_retransmissions = 0;  // NAK- or gap-driven
  uint64_t naks = 0;
  uint64_t bad_frames = 0;            // CRC/COBS/length failures seen by the host
  uint64_t ignored_frames = 0;        // duplicates and frames of an older session
  uint64_t device_resets = 0;
  uint64_t bytes_out = 0;             // every byte written, retransmissions included
  uint64_t bytes_in = 0;              // every byte read
  uint64_t message_bytes_out = 0;     // protobuf payload of distinct requests
  uint64_t message_bytes_in = 0;      // protobuf payload of accepted responses
};

// The host end of the link protocol (docs/protocol.md) over one Transport: COBS/CRC framing,
// sequence numbers, a window of requests in flight, retransmission on timeout, NAK or gap,
// and detection of device resets by session nonce. Owns the transport. Not thread-safe: one
// caller at a time; every call returns within the configured timeout of the device going quiet.
//
// Call order: Open() (handshake), then Call/Transact. After an error that IsDeviceReset()
// recognises, call Open() again to start a new session. After a timeout or a transport error
// the link is closed: every call fails until Open() succeeds again.
class Link {
 public:
  Link(std::unique_ptr<Transport> transport, LinkOptions options = {});

  // Handshake: negotiates frame size and window, learns the chip and the session nonce.
  absl::StatusOr<proto::wire::HelloResponse> Open();

  // Produces request `index`; an error stops sending (in-flight requests are still drained).
  using RequestSource = std::function<absl::StatusOr<proto::wire::Request>(size_t index)>;
  // Receives the response to request `index` (each exactly once, in the order they arrive,
  // which is index order unless frames were lost). An error stops the transaction.
  using ResponseHandler =
      std::function<absl::Status(size_t index, const proto::wire::Response& response)>;

  // Runs `count` requests with up to window() in flight. Device-side errors in responses are
  // passed to `on_response` as they are; link failures come back as the status.
  absl::Status Transact(size_t count, const RequestSource& source, const ResponseHandler& on_response);

  // One request, one response.
  absl::StatusOr<proto::wire::Response> Call(const proto::wire::Request& request);

  bool is_open() const { return open_; }
  uint32_t session_nonce() const { return nonce_; }
  uint32_t window() const { return window_; }
  uint32_t max_frame_bytes() const { return max_frame_bytes_; }
  // Largest serialized request or response that fits one frame.
  size_t max_message_bytes() const { return max_frame_bytes_ - kFrameOverheadBytes; }
  const LinkStats& stats() const { return stats_; }
  const std::string& name() const { return transport_->name(); }
  absl::Duration rto() const { return rto_; }

 private:
  struct Pending;
  absl::Status Run(size_t count, const RequestSource& source, const ResponseHandler& on_response,
                   bool hello);
  absl::Status Send(Pending& p, absl::Time now);
  void SampleRtt(absl::Duration rtt);
  absl::Duration MaxRto() const;

  std::unique_ptr<Transport> transport_;
  LinkOptions options_;
  FrameDecoder decoder_;
  bool open_ = false;
  uint32_t nonce_ = 0;
  uint32_t next_seq_;
  uint32_t window_ = 1;
  uint32_t max_frame_bytes_;
  // RFC 6298 state.
  bool have_rtt_ = false;
  absl::Duration srtt_;
  absl::Duration rttvar_;
  absl::Duration rto_;       // current, with backoff
  absl::Duration base_rto_;  // from the estimate, without backoff
  absl::Duration rto_floor_;
  LinkStats stats_;
};

// True for the status a Link returns when the device reset (its session nonce changed): the
// device lost every tile; reopen the link and reload, or stop.
bool IsDeviceReset(const absl::Status& status);

}  // namespace pim::drivers
