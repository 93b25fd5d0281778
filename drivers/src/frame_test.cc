#include "pim/drivers/frame.h"

#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "pim/drivers/crc32c.h"

namespace pim::drivers {
namespace {

std::vector<absl::StatusOr<Frame>> FeedAll(FrameDecoder& decoder, const std::vector<uint8_t>& bytes,
                                           size_t piece = 0) {
  std::vector<absl::StatusOr<Frame>> got;
  auto sink = [&](absl::StatusOr<Frame> f) { got.push_back(std::move(f)); };
  if (piece == 0) piece = bytes.size();
  for (size_t i = 0; i < bytes.size(); i += piece) {
    decoder.Feed(absl::MakeConstSpan(bytes).subspan(i, std::min(piece, bytes.size() - i)), sink);
  }
  return got;
}

Frame Sample(uint32_t seq, size_t payload) {
  Frame f{FrameType::kResponse, seq, 0xA5A50001u, std::string(payload, '\0')};
  for (size_t i = 0; i < payload; ++i) f.payload[i] = char(i * 7 + seq);
  return f;
}

TEST(Frame, RoundTripsThroughTheDecoderInAnyPieces) {
  std::vector<uint8_t> wire;
  for (uint32_t seq = 0; seq < 20; ++seq) EncodeFrame(Sample(seq, seq * 97), &wire);
  for (size_t piece : {size_t(0), size_t(1), size_t(3), size_t(500)}) {
    FrameDecoder decoder(4096);
    auto got = FeedAll(decoder, wire, piece);
    ASSERT_EQ(got.size(), 20u);
    for (uint32_t seq = 0; seq < 20; ++seq) {
      ASSERT_TRUE(got[seq].ok()) << got[seq].status();
      EXPECT_EQ(got[seq]->seq, seq);
      EXPECT_EQ(got[seq]->nonce, 0xA5A50001u);
      EXPECT_EQ(got[seq]->type, FrameType::kResponse);
      EXPECT_EQ(got[seq]->payload, Sample(seq, seq * 97).payload);
    }
  }
}

TEST(Frame, WireSizeStaysWithinTheBound) {
  for (size_t n : {0, 1, 253, 254, 1000, 16000}) {
    std::vector<uint8_t> wire;
    EncodeFrame(Sample(1, n), &wire);
    EXPECT_LE(wire.size(), MaxWireBytes(n));
    EXPECT_EQ(wire.back(), 0);
  }
}

TEST(Frame, EveryFlippedBitIsCaught) {
  std::vector<uint8_t> wire;
  EncodeFrame(Sample(9, 40), &wire);
  for (size_t i = 0; i + 1 < wire.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::vector<uint8_t> bad = wire;
      bad[i] ^= uint8_t(1 << bit);
      FrameDecoder decoder(4096);
      for (const auto& f : FeedAll(decoder, bad)) {
        EXPECT_FALSE(f.ok()) << "flip at byte " << i << " bit " << bit << " went unnoticed";
      }
    }
  }
}

TEST(Frame, CrcMismatchNamesBothValues) {
  std::vector<uint8_t> wire;
  EncodeFrame(Sample(1, 10), &wire);
  wire[5] ^= 0x40;
  FrameDecoder decoder(4096);
  auto got = FeedAll(decoder, wire);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].status().code(), absl::StatusCode::kDataLoss);
}

TEST(Frame, OversizeRunIsDiscardedAndTheNextFrameStillDecodes) {
  FrameDecoder decoder(256);
  std::vector<uint8_t> wire(100000, 0x41);  // no delimiter for a long time
  wire.push_back(0);
  EncodeFrame(Sample(3, 20), &wire);
  auto got = FeedAll(decoder, wire, 4096);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_FALSE(got[0].ok());
  EXPECT_NE(got[0].status().message().find("exceeds the 256-byte frame limit"), std::string::npos)
      << got[0].status();
  ASSERT_TRUE(got[1].ok());
  EXPECT_EQ(got[1]->seq, 3u);
}

TEST(Frame, FrameLargerThanTheLimitIsRejected) {
  std::vector<uint8_t> wire;
  EncodeFrame(Sample(1, 300), &wire);
  FrameDecoder decoder(256);
  auto got = FeedAll(decoder, wire);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_FALSE(got[0].ok());
}

TEST(Frame, EmptyFramesAreSkippedAndShortOnesRejected) {
  FrameDecoder decoder(4096);
  std::vector<uint8_t> wire = {0, 0, 0, 0x03, 0x11, 0x22, 0};
  auto got = FeedAll(decoder, wire);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_NE(got[0].status().message().find("shorter than"), std::string::npos) << got[0].status();
}

TEST(Frame, UnknownTypeAndReservedByteAreRejected) {
  for (int which = 0; which < 2; ++which) {
    std::vector<uint8_t> body(kFrameOverheadBytes, 0);
    body[0] = which == 0 ? 9 : 1;
    body[1] = which == 0 ? 0 : 1;
    // A CRC-correct body, so only the header check can refuse it.
    const uint32_t crc = Crc32c(absl::MakeConstSpan(body.data(), kFrameHeaderBytes));
    for (int i = 0; i < 4; ++i) body[kFrameHeaderBytes + i] = uint8_t(crc >> (8 * i));
    absl::StatusOr<Frame> parsed = ParseFrameBody(body);
    ASSERT_FALSE(parsed.ok());
    EXPECT_NE(parsed.status().message().find(which == 0 ? "type 9 is unknown" : "reserved byte"),
              std::string::npos)
        << parsed.status();
  }
}

}  // namespace
}  // namespace pim::drivers
