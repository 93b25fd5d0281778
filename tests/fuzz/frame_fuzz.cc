// Fuzz target: the link's frame decoder (COBS, length limit, CRC, header) on arbitrary bytes,
// fed in arbitrary pieces, then each decoded payload through the host's response parser.
#include <cstddef>
#include <cstdint>

#include <google/protobuf/stubs/logging.h>

#include "pim/drivers/cobs.h"
#include "pim/drivers/frame.h"
#include "pim/drivers/wire_codec.h"
#include "pim/proto/wire.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pim::drivers;
  if (size == 0) return 0;
  // Protobuf logs every invalid UTF-8 string it meets; the parse result is what matters here.
  static const bool quiet = (google::protobuf::SetLogHandler(nullptr), true);
  (void)quiet;
  // First byte: how to cut the rest into Feed calls; the decoder must not care.
  const size_t piece = size_t(data[0]) % 64 + 1;
  absl::Span<const uint8_t> bytes(data + 1, size - 1);
  FrameDecoder decoder(512);
  size_t frames = 0;
  for (size_t i = 0; i < bytes.size(); i += piece) {
    decoder.Feed(bytes.subspan(i, piece), [&](absl::StatusOr<Frame> f) {
      ++frames;
      if (!f.ok()) return;
      // What a host does with a frame that passed the CRC.
      pim::proto::wire::Response r;
      if (r.ParseFromString(f->payload) && r.has_run_mvm()) {
        const auto& m = r.run_mvm();
        // Only a shape the caller asked for is unpacked; ask for what the message claims, if small.
        const uint64_t n = uint64_t(m.vectors()) * m.outputs() * m.conversions();
        if (n <= 4096) {
          std::vector<int16_t> codes(n);
          (void)UnpackCodes(m, m.tile_id(), m.vectors(), m.outputs(), m.conversions(), m.code_bytes() == 2 ? 12 : 7,
                            (m.tile_id() & 1) != 0, absl::MakeSpan(codes));
        }
      }
    });
  }
  (void)CobsDecode(bytes);
  (void)frames;
  return 0;
}
