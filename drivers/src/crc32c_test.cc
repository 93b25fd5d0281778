#include "pim/drivers/crc32c.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace pim::drivers {
namespace {

absl::Span<const uint8_t> Bytes(const std::string& s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

TEST(Crc32c, MatchesTheStandardCheckValue) { EXPECT_EQ(Crc32c(Bytes("123456789")), 0xE3069283u); }

TEST(Crc32c, MatchesRfc3720TestVectors) {
  std::vector<uint8_t> zeros(32, 0x00), ones(32, 0xFF), up(32), down(32);
  for (int i = 0; i < 32; ++i) {
    up[i] = uint8_t(i);
    down[i] = uint8_t(31 - i);
  }
  EXPECT_EQ(Crc32c(zeros), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(ones), 0x62A8AB43u);
  EXPECT_EQ(Crc32c(up), 0x46DD794Eu);
  EXPECT_EQ(Crc32c(down), 0x113FDB5Cu);
}

TEST(Crc32c, ContinuesAcrossPieces) {
  const std::string text = "The quick brown fox jumps over the lazy dog";
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    EXPECT_EQ(Crc32c(Bytes(text.substr(cut)), Crc32c(Bytes(text.substr(0, cut)))), Crc32c(Bytes(text)));
  }
}

TEST(Crc32c, EmptyInputIsZero) { EXPECT_EQ(Crc32c({}), 0u); }

}  // namespace
}  // namespace pim::drivers
