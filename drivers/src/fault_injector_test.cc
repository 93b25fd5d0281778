#include "pim/drivers/fault_injector.h"

#include <vector>

#include "gtest/gtest.h"
#include "pim/drivers/frame.h"

namespace pim::drivers {
namespace {

std::vector<uint8_t> Frames(int n) {
  std::vector<uint8_t> wire;
  for (int i = 0; i < n; ++i) EncodeFrame(Frame{FrameType::kRequest, uint32_t(i), 1, std::string(50, 'x')}, &wire);
  return wire;
}

TEST(FaultRates, ParsesKindsAndTotals) {
  absl::StatusOr<FaultRates> r = ParseFaultRates("drop=0.1,corrupt=0.05,stall_ms=300");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_DOUBLE_EQ(r->drop, 0.1);
  EXPECT_DOUBLE_EQ(r->corrupt, 0.05);
  EXPECT_EQ(r->stall_duration, absl::Milliseconds(300));
  r = ParseFaultRates("rate=0.06,kinds=drop+corrupt+reset");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_DOUBLE_EQ(r->drop, 0.02);
  EXPECT_DOUBLE_EQ(r->reset, 0.02);
  EXPECT_DOUBLE_EQ(r->truncate, 0.0);
}

TEST(FaultInjector, ARunLongerThanAnyFrameIsPassedOnNotHeld) {
  FaultInjector injector(FaultRates{}, 1);
  std::vector<FaultInjector::Chunk> out;
  const std::vector<uint8_t> run(FaultInjector::kMaxHeldBytes + 10, 0x55);
  injector.Feed(run, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].bytes.size(), FaultInjector::kMaxHeldBytes);
  out.clear();
  injector.Feed(std::vector<uint8_t>{0x00}, &out);  // the rest ends at the next delimiter
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].bytes.size(), 11u);
}

TEST(FaultRates, RejectsBadItemsByName) {
  EXPECT_NE(ParseFaultRates("drop=2").status().message().find("drop=2"), std::string::npos);
  EXPECT_NE(ParseFaultRates("melt=0.1").status().message().find("unknown key 'melt'"), std::string::npos);
  EXPECT_FALSE(ParseFaultRates("drop=abc").ok());
  EXPECT_FALSE(ParseFaultRates("drop=0.7,corrupt=0.7").ok());
  EXPECT_NE(ParseFaultRates("drop=0.1,drop=0.2").status().message().find("'drop' given twice"), std::string::npos);
  EXPECT_NE(ParseFaultRates("drop=0.1,,corrupt=0.1").status().message().find("empty item"), std::string::npos);
}

TEST(FaultInjector, SameSeedSameDamage) {
  FaultRates rates;
  rates.drop = rates.corrupt = rates.duplicate = rates.truncate = 0.1;
  const std::vector<uint8_t> wire = Frames(500);
  std::vector<FaultInjector::Chunk> a, b;
  FaultInjector(rates, 42).Feed(wire, &a);
  FaultInjector(rates, 42).Feed(wire, &b);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].bytes, b[i].bytes);
}

TEST(FaultInjector, RatesAreRoughlyHonouredAndFramesStayDelimited) {
  FaultRates rates;
  rates.drop = 0.05;
  rates.duplicate = 0.05;
  rates.truncate = 0.05;
  rates.stall = 0.05;
  FaultInjector injector(rates, 1);
  std::vector<FaultInjector::Chunk> out;
  injector.Feed(Frames(4000), &out);
  const FaultCounts& c = injector.counts();
  EXPECT_EQ(c.frames, 4000u);
  for (uint64_t n : {c.dropped, c.duplicated, c.truncated, c.stalled}) {
    EXPECT_GT(n, 120u);
    EXPECT_LT(n, 290u);
  }
  EXPECT_EQ(out.size(), 4000 - c.dropped + c.duplicated);
  for (const auto& chunk : out) EXPECT_EQ(chunk.bytes.back(), 0);
}

TEST(FaultInjector, HoldsAPartialFrameUntilItsDelimiter) {
  FaultInjector injector(FaultRates{}, 1);
  std::vector<uint8_t> wire = Frames(1);
  std::vector<FaultInjector::Chunk> out;
  injector.Feed(absl::MakeConstSpan(wire).subspan(0, 10), &out);
  EXPECT_TRUE(out.empty());
  injector.Feed(absl::MakeConstSpan(wire).subspan(10), &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].bytes, wire);
}

}  // namespace
}  // namespace pim::drivers
