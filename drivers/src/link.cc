#include "pim/drivers/link.h"

#include <algorithm>
#include <deque>
#include <random>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace pim::drivers {

namespace wire = proto::wire;

namespace {

constexpr char kDeviceResetPayload[] = "type.googleapis.com/pim.drivers.DeviceReset";

absl::Status DeviceResetError(const std::string& name, uint32_t old_nonce, uint32_t new_nonce) {
  absl::Status s = absl::AbortedError(absl::StrFormat(
      "%s: device reset detected (session nonce 0x%08x became 0x%08x); every tile it held is lost",
      name, old_nonce, new_nonce));
  s.SetPayload(kDeviceResetPayload, absl::Cord("reset"));
  return s;
}

}  // namespace

bool IsDeviceReset(const absl::Status& status) {
  return status.GetPayload(kDeviceResetPayload).has_value();
}

struct Link::Pending {
  uint32_t seq = 0;
  size_t index = 0;
  std::vector<uint8_t> wire;
  absl::Time last_sent;
  absl::Time deadline;
  int transmissions = 0;
  bool answered = false;
  bool fast = false;  // fast-retransmitted since its last timeout
};

Link::Link(std::unique_ptr<Transport> transport, LinkOptions options)
    : transport_(std::move(transport)),
      options_(std::move(options)),
      decoder_(std::clamp(options_.max_frame_bytes, kMinFrameBytes, kMaxFrameBytes)),
      // A fresh random starting point keeps a new host's sequence numbers clear of whatever a
      // previous host left in the device's response cache.
      next_seq_(uint32_t(std::random_device{}())),
      max_frame_bytes_(std::clamp(options_.max_frame_bytes, kMinFrameBytes, kMaxFrameBytes)),
      rto_(options_.initial_rto),
      base_rto_(options_.initial_rto),
      rto_floor_(options_.min_rto) {
  options_.window = std::max(options_.window, 1u);
}

void Link::SampleRtt(absl::Duration rtt) {
  if (!have_rtt_) {
    srtt_ = rtt;
    rttvar_ = rtt / 2;
    have_rtt_ = true;
  } else {
    rttvar_ = rttvar_ * 3 / 4 + absl::AbsDuration(srtt_ - rtt) / 4;
    srtt_ = srtt_ * 7 / 8 + rtt / 8;
  }
  base_rto_ = std::clamp(srtt_ + std::max(4 * rttvar_, absl::Milliseconds(1)), rto_floor_, MaxRto());
  rto_ = base_rto_;
}

absl::Duration Link::MaxRto() const {
  // At least a few retransmissions must fit in the timeout, or one unlucky loss ends the link.
  return std::max(rto_floor_, options_.timeout / 4);
}

absl::Status Link::Send(Pending& p, absl::Time now) {
  if (absl::Status s = transport_->Write(p.wire, options_.timeout); !s.ok()) {
    open_ = false;
    return s;
  }
  stats_.bytes_out += p.wire.size();
  ++p.transmissions;
  p.last_sent = now;
  p.deadline = now + rto_;
  return absl::OkStatus();
}

absl::StatusOr<wire::HelloResponse> Link::Open() {
  open_ = false;
  decoder_.Clear();
  decoder_.set_max_frame_bytes(std::clamp(options_.max_frame_bytes, kMinFrameBytes, kMaxFrameBytes));
  // A lone delimiter ends whatever partial frame the device may be holding from before.
  const uint8_t zero = 0;
  if (absl::Status s = transport_->Write(absl::MakeConstSpan(&zero, 1), options_.timeout); !s.ok()) {
    return s;
  }
  wire::Request request;
  wire::HelloRequest* hello = request.mutable_hello();
  hello->set_protocol_version(wire::PROTOCOL_VERSION_CURRENT);
  hello->set_max_frame_bytes(decoder_.max_frame_bytes());
  hello->set_window(options_.window);
  hello->set_host(options_.host);
  wire::Response response;
  absl::Status s = Run(
      1, [&](size_t) -> absl::StatusOr<wire::Request> { return request; },
      [&](size_t, const wire::Response& r) {
        response = r;
        return absl::OkStatus();
      },
      /*hello=*/true);
  if (!s.ok()) return s;
  if (response.error() != wire::OK) {
    return absl::FailedPreconditionError(absl::StrCat(name(), ": device refused the handshake: ",
                                                      wire::ErrorCode_Name(response.error()), ": ",
                                                      response.error_message()));
  }
  if (!response.has_hello()) {
    return absl::DataLossError(absl::StrCat(name(), ": handshake answered without a Hello body"));
  }
  const wire::HelloResponse& h = response.hello();
  const uint32_t frame = h.limits().max_frame_bytes();
  const uint32_t window = h.limits().window();
  if (frame < kMinFrameBytes || frame > decoder_.max_frame_bytes()) {
    return absl::DataLossError(absl::StrCat(name(), ": device chose a max frame of ", frame,
                                            " bytes, host allows ", kMinFrameBytes, "..",
                                            decoder_.max_frame_bytes()));
  }
  if (window < 1 || window > options_.window) {
    return absl::DataLossError(absl::StrCat(name(), ": device chose a window of ", window,
                                            ", host asked for at most ", options_.window));
  }
  if (h.protocol_version() != wire::PROTOCOL_VERSION_CURRENT) {
    return absl::DataLossError(absl::StrCat(name(), ": device answered the handshake with protocol version ",
                                            int(h.protocol_version()), ", host speaks ",
                                            int(wire::PROTOCOL_VERSION_CURRENT)));
  }
  if (h.session_nonce() == 0) {
    return absl::DataLossError(absl::StrCat(name(), ": device chose session nonce 0, which is reserved"));
  }
  if (h.session_nonce() != nonce_) {
    return absl::DataLossError(absl::StrFormat(
        "%s: handshake nonce 0x%08x differs from its frame's 0x%08x", name(), h.session_nonce(), nonce_));
  }
  max_frame_bytes_ = frame;
  window_ = window;
  decoder_.set_max_frame_bytes(frame);
  rto_floor_ = options_.min_rto;
  if (h.limits().link_bytes_per_second() > 0) {
    // On a slow link the oldest request may wait behind a full window of requests and of
    // responses (twice that on a half-duplex medium); a timer shorter than that only produces
    // spurious retransmissions of large frames.
    const double drain_s = 4.0 * double(window) * double(frame) / double(h.limits().link_bytes_per_second());
    rto_floor_ = std::max(rto_floor_, absl::Seconds(drain_s));
  }
  base_rto_ = std::clamp(have_rtt_ ? base_rto_ : options_.initial_rto, rto_floor_, MaxRto());
  rto_ = base_rto_;
  open_ = true;
  return h;
}

absl::Status Link::Transact(size_t count, const RequestSource& source,
                            const ResponseHandler& on_response) {
  return Run(count, source, on_response, /*hello=*/false);
}

absl::StatusOr<wire::Response> Link::Call(const wire::Request& request) {
  wire::Response response;
  absl::Status s = Transact(
      1, [&](size_t) -> absl::StatusOr<wire::Request> { return request; },
      [&](size_t, const wire::Response& r) {
        response = r;
        return absl::OkStatus();
      });
  if (!s.ok()) return s;
  return response;
}

absl::Status Link::Run(size_t count, const RequestSource& source, const ResponseHandler& on_response,
                       bool hello) {
  if (!hello && !open_) {
    return absl::FailedPreconditionError(
        absl::StrCat(name(), ": link is not open (no handshake, or it failed before)"));
  }
  std::deque<Pending> inflight;
  size_t next = 0;
  absl::Status first_error;  // from the source or the handler: stop sending, drain, report
  absl::Status link_error;   // from the frames themselves: stop at once
  absl::Time last_heard = absl::Now();
  std::vector<uint8_t> rx(65536);
  const uint32_t window = hello ? 1 : window_;

  auto find = [&](uint32_t seq) -> Pending* {
    for (Pending& p : inflight) {
      if (p.seq == seq) return &p;
    }
    return nullptr;
  };
  auto fast_retransmit = [&](Pending& p, absl::Time now) {
    p.fast = true;
    ++stats_.fast_retransmissions;
    if (absl::Status s = Send(p, now); !s.ok() && link_error.ok()) link_error = s;
  };
  auto on_frame = [&](absl::StatusOr<Frame> frame) {
    if (!link_error.ok()) return;
    if (!frame.ok()) {
      ++stats_.bad_frames;
      return;
    }
    const absl::Time now = absl::Now();
    switch (frame->type) {
      case FrameType::kResponse: {
        Pending* p = find(frame->seq);
        if (p == nullptr || p->answered || (!hello && frame->nonce != nonce_)) {
          ++stats_.ignored_frames;
          return;
        }
        wire::Response response;
        if (!response.ParseFromString(frame->payload)) {
          link_error = absl::DataLossError(absl::StrCat(
              name(), ": response to seq ", frame->seq, " (", frame->payload.size(),
              " bytes, CRC good) is not a wire.Response; device firmware bug?"));
          return;
        }
        if (hello) nonce_ = frame->nonce;
        last_heard = now;
        p->answered = true;
        ++stats_.responses;
        stats_.message_bytes_in += frame->payload.size();
        // Karn: only an unambiguous round trip is a sample; any answer ends the backoff.
        if (p->transmissions == 1) SampleRtt(now - p->last_sent);
        rto_ = base_rto_;
        // The device answers in sequence order, so an older request still unanswered had its
        // response lost: ask again now instead of waiting for the timer.
        for (Pending& q : inflight) {
          if (&q == p) break;
          if (!q.answered && !q.fast) fast_retransmit(q, now);
        }
        if (first_error.ok()) first_error = on_response(p->index, response);
        return;
      }
      case FrameType::kNak: {
        if (hello || frame->nonce != nonce_) {
          ++stats_.ignored_frames;
          return;
        }
        ++stats_.naks;
        wire::Nak nak;
        if (!nak.ParseFromString(frame->payload)) return;
        Pending* p = find(nak.expected_seq());
        // Only a NAK that moves a request on counts as hearing from the device: one naming
        // nothing in flight, repeated forever, must not hold the silence timeout off.
        if (p == nullptr || p->answered || p->fast) return;
        if (nak.reason() == wire::GAP) {
          last_heard = now;
          fast_retransmit(*p, now);
        } else {
          // A damaged frame reached the device; if the request it expects should have arrived
          // by now, that was probably it.
          const absl::Duration one_way = have_rtt_ ? srtt_ : rto_ / 2;
          if (now - p->last_sent > one_way) {
            last_heard = now;
            fast_retransmit(*p, now);
          }
        }
        return;
      }
      case FrameType::kResetNotice: {
        wire::ResetNotice notice;
        if (hello || !notice.ParseFromString(frame->payload) || notice.session_nonce() == nonce_) {
          ++stats_.ignored_frames;
          return;
        }
        ++stats_.device_resets;
        link_error = DeviceResetError(name(), nonce_, notice.session_nonce());
        return;
      }
      case FrameType::kRequest:
        ++stats_.ignored_frames;
        return;
    }
  };

  while (true) {
    absl::Time now = absl::Now();
    while (first_error.ok() && next < count && inflight.size() < window) {
      absl::StatusOr<wire::Request> request = source(next);
      if (!request.ok()) {
        first_error = request.status();
        break;
      }
      Pending p;
      std::string payload = request->SerializeAsString();
      if (payload.size() > max_message_bytes()) {
        first_error = absl::InvalidArgumentError(absl::StrCat(
            name(), ": request #", next, " is ", payload.size(), " bytes, the negotiated frame holds ",
            max_message_bytes()));
        break;
      }
      p.seq = next_seq_++;
      p.index = next++;
      ++stats_.requests;
      stats_.message_bytes_out += payload.size();
      EncodeFrame(Frame{FrameType::kRequest, p.seq, hello ? 0u : nonce_, std::move(payload)}, &p.wire);
      inflight.push_back(std::move(p));
      if (absl::Status s = Send(inflight.back(), now); !s.ok()) return s;
    }
    while (!inflight.empty() && inflight.front().answered) inflight.pop_front();
    if (inflight.empty()) {
      if (first_error.ok() && next < count) continue;
      return first_error;
    }

    const absl::Time wake = std::min(inflight.front().deadline, last_heard + options_.timeout);
    absl::StatusOr<size_t> n = transport_->Read(absl::MakeSpan(rx), std::max(wake - absl::Now(), absl::ZeroDuration()));
    if (!n.ok()) {
      open_ = false;
      return n.status();
    }
    if (*n > 0) {
      stats_.bytes_in += *n;
      decoder_.Feed(absl::MakeConstSpan(rx.data(), *n), on_frame);
      if (!link_error.ok()) {
        open_ = false;
        return link_error;
      }
    }
    while (!inflight.empty() && inflight.front().answered) inflight.pop_front();
    if (inflight.empty()) continue;

    now = absl::Now();
    Pending& oldest = inflight.front();
    if (now - last_heard >= options_.timeout) {
      open_ = false;
      return absl::DeadlineExceededError(absl::StrFormat(
          "%s: no answer from the device for %d ms (request seq %u sent %d times, %d requests in "
          "flight); device stalled or unplugged?",
          name(), absl::ToInt64Milliseconds(now - last_heard), oldest.seq, oldest.transmissions,
          inflight.size()));
    }
    if (now >= oldest.deadline) {
      if (oldest.transmissions >= options_.max_transmissions) {
        open_ = false;
        return absl::DeadlineExceededError(absl::StrFormat(
            "%s: request seq %u unanswered after %d transmissions; link too lossy or device stuck",
            name(), oldest.seq, oldest.transmissions));
      }
      rto_ = std::min(rto_ * 2, MaxRto());
      ++stats_.retransmissions;
      oldest.fast = false;
      if (absl::Status s = Send(oldest, now); !s.ok()) return s;
    }
  }
}

}  // namespace pim::drivers
