#include "pim/drivers/wire_codec.h"

#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace pim::drivers {
namespace {

namespace wire = proto::wire;

TEST(WireCodec, InputsRoundTripInBothEncodings) {
  std::mt19937 rng(3);
  for (int bits = 1; bits <= 8; ++bits) {
    for (auto encoding : {wire::PACKED, wire::BIT_PLANES}) {
      const int m = 5, rows = 37;
      std::vector<uint8_t> codes(m * rows);
      for (uint8_t& c : codes) c = uint8_t(rng() % (1u << bits));
      runtime::InputBatch batch{codes.data(), m, rows, bits, 0};
      wire::RunMvmRequest r;
      r.set_vectors(m);
      r.set_rows(rows);
      r.set_input_bits(bits);
      r.set_encoding(encoding);
      ASSERT_TRUE(PackInputs(batch, encoding, r.mutable_inputs()).ok());
      EXPECT_EQ(r.inputs().size(), PackedInputBytes(m, rows, bits));
      std::vector<uint8_t> back;
      ASSERT_TRUE(UnpackInputs(r, &back).ok());
      EXPECT_EQ(back, codes) << "bits " << bits << " encoding " << encoding;
    }
  }
}

TEST(WireCodec, BitPlanesPutPlaneZeroFirst) {
  // One vector, 8 rows, 2-bit codes 0..3 repeated: plane 0 = 0b10101010, plane 1 = 0b11001100.
  std::vector<uint8_t> codes = {0, 1, 2, 3, 0, 1, 2, 3};
  runtime::InputBatch batch{codes.data(), 1, 8, 2, 0};
  std::string out;
  ASSERT_TRUE(PackInputs(batch, wire::BIT_PLANES, &out).ok());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(uint8_t(out[0]), 0b10101010);
  EXPECT_EQ(uint8_t(out[1]), 0b11001100);
}

TEST(WireCodec, RejectsInputCountMismatchAndWideCodes) {
  wire::RunMvmRequest r;
  r.set_tile_id(4);
  r.set_vectors(1000000);
  r.set_rows(64);
  r.set_input_bits(4);
  r.set_encoding(wire::PACKED);
  r.set_inputs("abc");
  std::vector<uint8_t> back;
  absl::Status s = UnpackInputs(r, &back);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("3 input bytes"), std::string::npos) << s;
  std::vector<uint8_t> codes = {16};
  std::string out;
  EXPECT_FALSE(PackInputs(runtime::InputBatch{codes.data(), 1, 1, 4, 0}, wire::PACKED, &out).ok());
}

TEST(WireCodec, CodesRoundTripInOneAndTwoBytes) {
  std::vector<int16_t> small = {-64, -1, 0, 1, 63};  // 7-bit signed
  std::vector<int16_t> wide = {-2048, -1, 0, 255, 2047};  // 12-bit signed
  for (const auto& [codes, bytes] : {std::pair{small, 1}, std::pair{wide, 2}}) {
    wire::RunMvmResponse r;
    r.set_tile_id(2);
    r.set_vectors(1);
    r.set_outputs(uint32_t(codes.size()));
    r.set_conversions(1);
    r.set_code_bytes(bytes);
    PackCodes(codes, bytes, r.mutable_codes());
    std::vector<int16_t> back(codes.size());
    ASSERT_TRUE(UnpackCodes(r, 2, 1, uint32_t(codes.size()), 1, bytes == 1 ? 7 : 12, true, absl::MakeSpan(back)).ok());
    EXPECT_EQ(back, codes);
  }
}

TEST(WireCodec, CodesOutsideTheAdcRangeOrOfTheWrongWidthAreRefused) {
  wire::RunMvmResponse r;
  r.set_tile_id(2);
  r.set_vectors(1);
  r.set_outputs(3);
  r.set_conversions(1);
  r.set_code_bytes(1);
  PackCodes(std::vector<int16_t>{0, 7, 127}, 1, r.mutable_codes());
  std::vector<int16_t> back(3);
  absl::Status s = UnpackCodes(r, 2, 1, 3, 1, 4, true, absl::MakeSpan(back));
  EXPECT_EQ(s.message(), "run_mvm response tile 2: code 127 at index 2 is outside the 4-bit signed range [-8, 7]");
  EXPECT_TRUE(UnpackCodes(r, 2, 1, 3, 1, 7, false, absl::MakeSpan(back)).ok());  // 7-bit unsigned holds 127
  s = UnpackCodes(r, 2, 1, 3, 1, 12, true, absl::MakeSpan(back));
  EXPECT_EQ(s.message(), "run_mvm response tile 2: code_bytes = 1, a 12-bit ADC sends 2");
}

TEST(WireCodec, TileRoundTripAndCodeRangeCheck) {
  runtime::TileImage image;
  image.tile.id = 7;
  image.tile.k_begin = 64;
  image.tile.k_end = 66;
  image.tile.out_begin = 3;
  image.tile.out_end = 5;
  image.tile.placement.macro = 2;
  image.tile.placement.columns = 8;
  image.scheme = runtime::Scheme::kNative;
  image.weight_bits = 4;
  image.codes = {-7, 7, 0, 3};
  wire::WriteTileRequest r;
  TileToWire(image, &r);
  absl::StatusOr<runtime::TileImage> back = TileFromWire(r.tile(), r.codes());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->codes, image.codes);
  EXPECT_EQ(back->tile.placement.macro, 2);
  r.mutable_codes()->at(1) = char(8);
  absl::Status s = TileFromWire(r.tile(), r.codes()).status();
  EXPECT_NE(s.message().find("weight code 8 at output 0 row 1"), std::string::npos) << s;
}

}  // namespace
}  // namespace pim::drivers
