// Fuzz target: the device side's message parser and command validation. The input is a series
// of request payloads (each prefixed by a 2-byte little-endian length) that are framed correctly
// (right sequence numbers, nonce and CRC) so they reach the parser and the chip, behind a valid
// Hello: every field of every command is the fuzzer's.
#include <cstddef>
#include <cstdint>

#include <google/protobuf/stubs/logging.h>
#include <memory>

#include "pim/drivers/device_engine.h"
#include "pim/drivers/frame.h"
#include "pim/proto/wire.pb.h"
#include "pim/sim/sim_backend.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pim;
  // Protobuf logs every invalid UTF-8 string it meets; the parse result is what matters here.
  static const bool quiet = (google::protobuf::SetLogHandler(nullptr), true);
  (void)quiet;
  drivers::DeviceIdentity id;
  id.max_frame_bytes = 8192;
  id.window = 4;
  drivers::DeviceEngine engine(
      []() { return sim::OpenSimBackend(runtime::DeviceUri{}, runtime::OpenOptions{}); }, id, 1);
  std::vector<uint8_t> out;
  if (!engine.Boot(&out).ok()) return 0;
  proto::wire::Request hello;
  hello.mutable_hello()->set_protocol_version(proto::wire::PROTOCOL_VERSION_CURRENT);
  hello.mutable_hello()->set_max_frame_bytes(8192);
  hello.mutable_hello()->set_window(4);
  std::vector<uint8_t> in;
  drivers::EncodeFrame(drivers::Frame{drivers::FrameType::kRequest, 100, 0, hello.SerializeAsString()}, &in);
  engine.OnBytes(in, &out);
  uint32_t seq = 101;
  size_t i = 0;
  while (i + 2 <= size) {
    const size_t n = std::min(size - i - 2, size_t(data[i]) | (size_t(data[i + 1]) << 8));
    i += 2;
    in.clear();
    out.clear();
    // Mostly in order; the low bit of the length byte sometimes replays an old sequence number.
    const uint32_t s = (n & 1) && seq > 101 ? seq - 1 : seq++;
    drivers::EncodeFrame(drivers::Frame{drivers::FrameType::kRequest, s, engine.session_nonce(),
                                        std::string(reinterpret_cast<const char*>(data + i), n)},
                         &in);
    engine.OnBytes(in, &out);
    i += n;
  }
  return 0;
}
