#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace pim::drivers {

// The link's frame (docs/protocol.md section 2). On the wire a frame is
//   COBS(header | payload | crc32c) 0x00
// with a 10-byte little-endian header: type (u8), reserved (u8, 0), seq (u32), nonce (u32),
// then the payload (one protobuf message, possibly empty) and the CRC-32C of header and payload.
enum class FrameType : uint8_t {
  kRequest = 1,      // host -> device, payload proto::wire::Request
  kResponse = 2,     // device -> host, payload proto::wire::Response, seq of the request
  kNak = 3,          // device -> host, payload proto::wire::Nak
  kResetNotice = 4,  // device -> host, payload proto::wire::ResetNotice
};

const char* FrameTypeName(FrameType type);

constexpr size_t kFrameHeaderBytes = 10;
constexpr size_t kFrameCrcBytes = 4;
constexpr size_t kFrameOverheadBytes = kFrameHeaderBytes + kFrameCrcBytes;
// Bounds of the negotiated maximum frame size (decoded bytes: header + payload + CRC).
constexpr uint32_t kMinFrameBytes = 256;
constexpr uint32_t kMaxFrameBytes = 1u << 20;
constexpr uint32_t kDefaultMaxFrameBytes = 16384;

struct Frame {
  FrameType type = FrameType::kRequest;
  uint32_t seq = 0;
  uint32_t nonce = 0;
  std::string payload;
};

// Bytes a frame with `payload_bytes` of payload occupies on the wire, at most (COBS worst case
// plus the delimiter).
size_t MaxWireBytes(size_t payload_bytes);

// Appends the wire form of `frame` (COBS-encoded, with the trailing 0x00) to `*out`.
void EncodeFrame(const Frame& frame, std::vector<uint8_t>* out);

// Checks and parses one decoded frame body (header | payload | crc). DataLoss naming the
// problem (short, CRC mismatch, unknown type, reserved bits set).
absl::StatusOr<Frame> ParseFrameBody(absl::Span<const uint8_t> body);

// Splits a byte stream into frames at 0x00 delimiters and decodes them. Holds at most
// CobsMaxEncodedSize(max_frame_bytes) bytes: a longer run is discarded up to the next delimiter
// and reported once as an oversize frame, so a peer that never sends 0x00 costs bounded memory.
// Empty frames (two delimiters in a row, used to resynchronise) are skipped silently.
// Not thread-safe.
class FrameDecoder {
 public:
  using Sink = std::function<void(absl::StatusOr<Frame>)>;

  explicit FrameDecoder(size_t max_frame_bytes = kDefaultMaxFrameBytes);

  void set_max_frame_bytes(size_t max_frame_bytes) { max_frame_bytes_ = max_frame_bytes; }
  size_t max_frame_bytes() const { return max_frame_bytes_; }

  // Feeds received bytes; calls `sink` once per complete frame, in order: the frame, or a
  // DataLoss status saying why it was rejected.
  void Feed(absl::Span<const uint8_t> bytes, const Sink& sink);

  // Drops a partial frame (after a reconnect).
  void Clear();

 private:
  size_t max_frame_bytes_;
  std::vector<uint8_t> buffer_;
  bool discarding_ = false;
  size_t discarded_bytes_ = 0;
};

}  // namespace pim::drivers
