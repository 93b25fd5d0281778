#include "pim/drivers/cobs.h"

#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace pim::drivers {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes Encode(const Bytes& in) {
  Bytes out;
  CobsEncode(in, &out);
  return out;
}

TEST(Cobs, EncodesTheReferenceExamples) {
  EXPECT_EQ(Encode({0x00}), (Bytes{0x01, 0x01}));
  EXPECT_EQ(Encode({0x00, 0x00}), (Bytes{0x01, 0x01, 0x01}));
  EXPECT_EQ(Encode({0x11, 0x22, 0x00, 0x33}), (Bytes{0x03, 0x11, 0x22, 0x02, 0x33}));
  EXPECT_EQ(Encode({0x11, 0x22, 0x33, 0x44}), (Bytes{0x05, 0x11, 0x22, 0x33, 0x44}));
  EXPECT_EQ(Encode({0x11, 0x00, 0x00, 0x00}), (Bytes{0x02, 0x11, 0x01, 0x01, 0x01}));
  EXPECT_EQ(Encode({}), (Bytes{0x01}));
}

TEST(Cobs, SplitsRunsOf254NonZeroBytes) {
  Bytes in(254);
  for (int i = 0; i < 254; ++i) in[i] = uint8_t(i + 1);
  Bytes want = {0xFF};
  want.insert(want.end(), in.begin(), in.end());
  want.push_back(0x01);
  EXPECT_EQ(Encode(in), want);
}

TEST(Cobs, RoundTripsRandomDataWithinTheOverheadBound) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 500; ++trial) {
    Bytes in(rng() % 2000);
    const bool sparse = trial % 2 == 0;
    for (uint8_t& b : in) b = sparse ? uint8_t(rng() % 4 == 0 ? 0 : rng()) : uint8_t(rng() % 255 + 1);
    Bytes enc = Encode(in);
    EXPECT_LE(enc.size(), CobsMaxEncodedSize(in.size()));
    for (uint8_t b : enc) ASSERT_NE(b, 0);
    absl::StatusOr<Bytes> dec = CobsDecode(enc);
    ASSERT_TRUE(dec.ok()) << dec.status();
    EXPECT_EQ(*dec, in);
  }
}

TEST(Cobs, RejectsACodeThatRunsPastTheEnd) {
  absl::StatusOr<Bytes> dec = CobsDecode(Bytes{0x05, 0x11, 0x22});
  ASSERT_FALSE(dec.ok());
  EXPECT_NE(dec.status().message().find("runs past the end"), std::string::npos) << dec.status();
}

TEST(Cobs, RejectsZeroBytes) {
  EXPECT_FALSE(CobsDecode(Bytes{0x03, 0x11, 0x00}).ok());
  EXPECT_FALSE(CobsDecode(Bytes{0x00}).ok());
}

}  // namespace
}  // namespace pim::drivers
