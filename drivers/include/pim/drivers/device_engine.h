#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "pim/drivers/frame.h"
#include "pim/proto/wire.pb.h"
#include "pim/runtime/backend.h"

namespace pim::drivers {

// What a device says about itself in the handshake, and the limits it accepts.
struct DeviceIdentity {
  std::string serial_number = "PIM-EMU-0000";
  std::string firmware_version = "pim-emu 0.1.0";
  std::string profile;                   // non-ideality profile name, "" on silicon
  uint32_t max_frame_bytes = 65536;      // the device's largest frame
  uint32_t window = 32;                  // requests it buffers out of order and caches
  uint32_t max_tiles = 1u << 16;
  uint64_t link_bytes_per_second = 0;    // advertised link rate (0: unknown)
};

// Creates the chip behind the protocol: called at boot and after every device reset, so a
// reset really loses all weights and counters.
using ChipFactory = std::function<absl::StatusOr<std::unique_ptr<runtime::Backend>>()>;

struct DeviceEngineStats {
  uint64_t frames_in = 0;
  uint64_t bad_frames = 0;
  uint64_t requests_executed = 0;
  uint64_t duplicates_answered = 0;  // retransmitted requests answered from the cache
  uint64_t out_of_order = 0;         // requests buffered ahead of a gap
  uint64_t naks_sent = 0;
  uint64_t stale_nonce = 0;          // requests of an older session (answered with a notice)
  uint64_t boots = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
};

// The device side of the link protocol (docs/protocol.md): decodes frames, executes requests
// in sequence order exactly once, caches the last `window` responses for retransmissions,
// answers gaps and bad frames with NAKs, and keeps a session nonce that changes on every boot.
// It drives any runtime::Backend; pim-emu puts the simulator behind it, a firmware would put
// the silicon. Pure byte-in/byte-out: the caller owns the I/O. Not thread-safe.
class DeviceEngine {
 public:
  DeviceEngine(ChipFactory factory, DeviceIdentity identity, uint64_t seed);

  // (Re)starts the device: a fresh chip, a new session nonce, no session, and a RESET_NOTICE
  // frame appended to `*out` (a device announces that it came up). Fails if the chip cannot
  // be created.
  absl::Status Boot(std::vector<uint8_t>* out);

  // Consumes bytes received from the host; appends the bytes to send back to `*out`.
  void OnBytes(absl::Span<const uint8_t> in, std::vector<uint8_t>* out);

  uint32_t session_nonce() const { return nonce_; }
  const DeviceEngineStats& stats() const { return stats_; }

 private:
  struct TileState {
    proto::wire::TileHeader header;
    std::string codes;
    runtime::AdcSetting adc;
    bool adc_configured = false;
  };

  void OnFrame(Frame frame, std::vector<uint8_t>* out);
  void Execute(uint32_t seq, const std::string& payload, std::vector<uint8_t>* out);
  proto::wire::Response Dispatch(const proto::wire::Request& request);
  proto::wire::Response Hello(const proto::wire::HelloRequest& hello);
  proto::wire::Response WriteTile(const proto::wire::WriteTileRequest& request);
  proto::wire::Response ReadTile(const proto::wire::ReadTileRequest& request);
  proto::wire::Response ConfigureAdc(const proto::wire::ConfigureAdcRequest& request);
  proto::wire::Response RunMvm(const proto::wire::RunMvmRequest& request);
  proto::wire::Response ReadCounters();
  proto::wire::Response Reset();
  void Send(FrameType type, uint32_t seq, const std::string& payload, std::vector<uint8_t>* out);
  void SendNak(proto::wire::NakReason reason, std::vector<uint8_t>* out);
  void SendResetNotice(std::vector<uint8_t>* out);

  ChipFactory factory_;
  DeviceIdentity identity_;
  uint64_t seed_;
  std::unique_ptr<runtime::Backend> chip_;
  FrameDecoder decoder_;
  uint32_t nonce_ = 0;

  // Session state, reset by Hello and by Boot.
  bool session_ = false;
  uint32_t expected_seq_ = 0;
  uint32_t max_frame_bytes_ = 0;
  uint32_t window_ = 1;
  std::map<uint32_t, std::vector<uint8_t>> cache_;  // seq -> encoded response frame
  std::map<uint32_t, Frame> ahead_;                 // requests beyond a gap, by seq
  bool gap_naked_ = false;                          // a GAP NAK for expected_seq_ went out

  std::map<uint32_t, TileState> tiles_;
  DeviceEngineStats stats_;
};

}  // namespace pim::drivers
