#include "pim/runtime/backend.h"

#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pim::runtime {
namespace {

// Records the primitives and answers RunTile with a code that encodes (tile, vector, output,
// conversion, first input code) so the host-side accumulation can be checked exactly.
class ScriptedBackend : public Backend {
 public:
  const ChipInfo& info() const override { return info_; }
  absl::Status WriteTile(const TileImage& image) override {
    images[image.tile.id] = image;
    return absl::OkStatus();
  }
  absl::Status ConfigureAdc(uint32_t id, const AdcSetting& s) override {
    adc[id] = s;
    return absl::OkStatus();
  }
  absl::Status RunTile(uint32_t id, const InputBatch& in, absl::Span<int16_t> codes) override {
    const TileSpec& t = images.at(id).tile;
    const int conv = ConversionsPerOutput(images.at(id).scheme, in.input_bits);
    EXPECT_EQ(in.width, t.rows());
    EXPECT_EQ(codes.size(), size_t(in.vectors * t.outputs() * conv));
    first_samples.push_back(in.first_sample);
    size_t i = 0;
    for (int m = 0; m < in.vectors; ++m)
      for (int o = 0; o < t.outputs(); ++o)
        for (int j = 0; j < conv; ++j) codes[i++] = int16_t(Code(id, m, o + t.out_begin, j, in.codes[m * in.width]));
    return absl::OkStatus();
  }
  absl::StatusOr<Counters> ReadCounters() override { return Counters{}; }

  static int Code(uint32_t id, int m, int o, int j, int x0) { return int(id) * 3 + m * 5 - o * 2 + j * 7 + x0; }

  std::map<uint32_t, TileImage> images;
  std::map<uint32_t, AdcSetting> adc;
  std::vector<uint64_t> first_samples;
  ChipInfo info_;
};

LayerMapping TwoByTwoTiles(Scheme scheme) {
  LayerMapping l;
  l.name = "fc";
  l.out_channels = 3;
  l.reduction = 5;
  l.scheme = scheme;
  l.rows = 3;
  l.adc_bits = 5;
  l.adc_step = 2.5;
  l.weight_bits = 4;
  l.input_bits = 3;
  for (int i = 0; i < 15; ++i) l.weight_codes.push_back(int8_t(i % 15 - 7));
  // Row groups [0,3) and [3,5); outputs split [0,2) and [2,3).
  uint32_t id = 10;
  for (auto [k0, k1] : {std::pair{0, 3}, std::pair{3, 5}}) {
    for (auto [o0, o1] : {std::pair{0, 2}, std::pair{2, 3}}) {
      TileSpec t;
      t.id = id++;
      t.row_group = k0 / 3;
      t.k_begin = k0;
      t.k_end = k1;
      t.out_begin = o0;
      t.out_end = o1;
      l.tiles.push_back(t);
    }
  }
  return l;
}

TEST(Backend, LoadLayerWritesTileCodesByOutputThenRow) {
  ScriptedBackend b;
  LayerMapping l = TwoByTwoTiles(Scheme::kNative);
  ASSERT_TRUE(b.LoadLayer(l).ok());
  ASSERT_EQ(b.images.size(), 4u);
  // Tile 13: rows [3,5), outputs [2,3): codes W[2][3], W[2][4].
  EXPECT_EQ(b.images.at(13).codes, (std::vector<int8_t>{l.weight_codes[13], l.weight_codes[14]}));
  // Tile 10: rows [0,3), outputs [0,2).
  EXPECT_EQ(b.images.at(10).codes, (std::vector<int8_t>{-7, -6, -5, -2, -1, 0}));
  EXPECT_EQ(b.adc.at(12).adc_bits, 5);
  EXPECT_DOUBLE_EQ(b.adc.at(12).adc_step, 2.5);
}

TEST(Backend, RunLayerAccumulatesPerScheme) {
  for (Scheme scheme : {Scheme::kNative, Scheme::kDifferential, Scheme::kBitSerial}) {
    ScriptedBackend b;
    LayerMapping l = TwoByTwoTiles(scheme);
    ASSERT_TRUE(b.LoadLayer(l).ok());
    const std::vector<uint8_t> x = {1, 2, 3, 4, 5, 6, 7, 0, 1, 2};  // two vectors of K = 5
    std::vector<int32_t> sums(6, -99);
    InputBatch in{x.data(), 2, 5, 3, 40};
    ASSERT_TRUE(b.RunLayer(l, in, absl::MakeSpan(sums)).ok());
    for (int m = 0; m < 2; ++m) {
      for (int o = 0; o < 3; ++o) {
        int32_t want = 0;
        for (const TileSpec& t : l.tiles) {
          if (o < t.out_begin || o >= t.out_end) continue;
          const int x0 = x[size_t(m * 5 + t.k_begin)];
          auto c = [&](int j) { return ScriptedBackend::Code(t.id, m, o, j, x0); };
          if (scheme == Scheme::kNative) want += c(0);
          if (scheme == Scheme::kDifferential) want += c(0) - c(1);
          if (scheme == Scheme::kBitSerial) want += c(0) + 2 * c(1) + 4 * c(2);
        }
        EXPECT_EQ(sums[size_t(m * 3 + o)], want) << SchemeName(scheme) << " m=" << m << " o=" << o;
      }
    }
    EXPECT_EQ(b.first_samples, (std::vector<uint64_t>(4, 40)));
  }
}

TEST(Backend, RunLayerRefusesWrongWidth) {
  ScriptedBackend b;
  LayerMapping l = TwoByTwoTiles(Scheme::kNative);
  std::vector<uint8_t> x(8);
  std::vector<int32_t> sums(6);
  absl::Status s = b.RunLayer(l, InputBatch{x.data(), 2, 4, 3, 0}, absl::MakeSpan(sums));
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("vectors of width 4, layer reduction K is 5"));
}

TEST(Backend, ColumnsPerWeight) {
  EXPECT_EQ(ColumnsPerWeight(Scheme::kNative, 4, 1), 4);
  EXPECT_EQ(ColumnsPerWeight(Scheme::kBitSerial, 4, 2), 2);
  EXPECT_EQ(ColumnsPerWeight(Scheme::kDifferential, 4, 1), 6);
  EXPECT_EQ(ConversionsPerOutput(Scheme::kBitSerial, 4), 4);
}

}  // namespace
}  // namespace pim::runtime
