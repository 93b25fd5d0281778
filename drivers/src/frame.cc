#include "pim/drivers/frame.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "pim/drivers/cobs.h"
#include "pim/drivers/crc32c.h"

namespace pim::drivers {
namespace {

void PutU32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v);
  p[1] = uint8_t(v >> 8);
  p[2] = uint8_t(v >> 16);
  p[3] = uint8_t(v >> 24);
}

uint32_t GetU32(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}

}  // namespace

const char* FrameTypeName(FrameType type) {
  switch (type) {
    case FrameType::kRequest: return "request";
    case FrameType::kResponse: return "response";
    case FrameType::kNak: return "nak";
    case FrameType::kResetNotice: return "reset-notice";
  }
  return "unknown";
}

size_t MaxWireBytes(size_t payload_bytes) {
  return CobsMaxEncodedSize(payload_bytes + kFrameOverheadBytes) + 1;
}

void EncodeFrame(const Frame& frame, std::vector<uint8_t>* out) {
  std::vector<uint8_t> body(kFrameOverheadBytes + frame.payload.size());
  body[0] = uint8_t(frame.type);
  body[1] = 0;
  PutU32(&body[2], frame.seq);
  PutU32(&body[6], frame.nonce);
  std::copy(frame.payload.begin(), frame.payload.end(), body.begin() + kFrameHeaderBytes);
  const size_t crc_at = kFrameHeaderBytes + frame.payload.size();
  PutU32(&body[crc_at], Crc32c(absl::MakeConstSpan(body.data(), crc_at)));
  CobsEncode(body, out);
  out->push_back(0);
}

absl::StatusOr<Frame> ParseFrameBody(absl::Span<const uint8_t> body) {
  if (body.size() < kFrameOverheadBytes) {
    return absl::DataLossError(absl::StrCat("frame of ", body.size(), " bytes is shorter than the ",
                                            kFrameOverheadBytes, "-byte header and CRC"));
  }
  const size_t crc_at = body.size() - kFrameCrcBytes;
  const uint32_t want = GetU32(&body[crc_at]);
  const uint32_t got = Crc32c(body.subspan(0, crc_at));
  if (want != got) {
    return absl::DataLossError(absl::StrFormat(
        "frame of %d bytes: CRC-32C mismatch (frame says 0x%08x, computed 0x%08x)", body.size(),
        want, got));
  }
  const uint8_t type = body[0];
  if (type < uint8_t(FrameType::kRequest) || type > uint8_t(FrameType::kResetNotice)) {
    return absl::DataLossError(absl::StrCat("frame type ", int(type), " is unknown"));
  }
  if (body[1] != 0) {
    return absl::DataLossError(absl::StrCat("frame reserved byte is ", int(body[1]), ", expected 0"));
  }
  Frame frame;
  frame.type = FrameType(type);
  frame.seq = GetU32(&body[2]);
  frame.nonce = GetU32(&body[6]);
  frame.payload.assign(reinterpret_cast<const char*>(body.data()) + kFrameHeaderBytes,
                       crc_at - kFrameHeaderBytes);
  return frame;
}

FrameDecoder::FrameDecoder(size_t max_frame_bytes) : max_frame_bytes_(max_frame_bytes) {}

void FrameDecoder::Clear() {
  buffer_.clear();
  discarding_ = false;
  discarded_bytes_ = 0;
}

void FrameDecoder::Feed(absl::Span<const uint8_t> bytes, const Sink& sink) {
  const size_t limit = CobsMaxEncodedSize(max_frame_bytes_);
  size_t i = 0;
  while (i < bytes.size()) {
    // Find the next delimiter in what is left.
    size_t end = i;
    while (end < bytes.size() && bytes[end] != 0) ++end;
    const size_t run = end - i;
    if (discarding_) {
      discarded_bytes_ += run;
    } else if (buffer_.size() + run > limit) {
      discarding_ = true;
      discarded_bytes_ = buffer_.size() + run;
      buffer_.clear();
      buffer_.shrink_to_fit();
    } else {
      buffer_.insert(buffer_.end(), bytes.begin() + i, bytes.begin() + end);
    }
    if (end == bytes.size()) break;  // no delimiter yet: wait for more bytes
    // A delimiter at `end` closes the current frame.
    if (discarding_) {
      sink(absl::DataLossError(absl::StrCat("frame of at least ", discarded_bytes_,
                                            " encoded bytes exceeds the ", max_frame_bytes_,
                                            "-byte frame limit; discarded")));
      discarding_ = false;
      discarded_bytes_ = 0;
    } else if (!buffer_.empty()) {
      absl::StatusOr<std::vector<uint8_t>> body = CobsDecode(buffer_);
      buffer_.clear();
      if (!body.ok()) {
        sink(absl::DataLossError(body.status().message()));
      } else if (body->size() > max_frame_bytes_) {
        sink(absl::DataLossError(absl::StrCat("frame of ", body->size(), " bytes exceeds the ",
                                              max_frame_bytes_, "-byte frame limit")));
      } else {
        sink(ParseFrameBody(*body));
      }
    }
    i = end + 1;
  }
}

}  // namespace pim::drivers
