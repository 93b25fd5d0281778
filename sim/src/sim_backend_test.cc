#include "pim/sim/sim_backend.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pim/proto/chip.pb.h"
#include "pim/runtime/chip_file.h"

namespace pim::sim {
namespace {

using runtime::Scheme;
using ::testing::HasSubstr;

runtime::ChipSpec DefaultSpec() {
  absl::StatusOr<proto::ChipFile> file = runtime::ReadChipFile(runtime::DefaultChipFilePath());
  EXPECT_TRUE(file.ok()) << file.status();
  return *runtime::ChipSpecFromProto(file->spec());
}

std::unique_ptr<SimBackend> MakeSim() {
  SimParams params;
  params.spec = DefaultSpec();
  absl::StatusOr<std::unique_ptr<SimBackend>> sim = SimBackend::Create(params);
  EXPECT_TRUE(sim.ok());
  return std::move(*sim);
}

runtime::TileImage Tile(uint32_t id, Scheme scheme, std::vector<int8_t> codes, int rows, int outputs,
                        int column_offset = 0) {
  runtime::TileImage image;
  image.tile.id = id;
  image.tile.k_begin = 0;
  image.tile.k_end = rows;
  image.tile.out_begin = 0;
  image.tile.out_end = outputs;
  image.tile.placement.column_offset = column_offset;
  image.tile.placement.columns = outputs * runtime::ColumnsPerWeight(scheme, 4, 1);
  image.scheme = scheme;
  image.weight_bits = 4;
  image.codes = std::move(codes);
  return image;
}

std::vector<int16_t> RunOne(SimBackend& sim, uint32_t id, std::vector<uint8_t> x, int bits, int conv, int outputs) {
  std::vector<int16_t> codes(size_t(outputs * conv));
  absl::Status s = sim.RunTile(id, runtime::InputBatch{x.data(), 1, int(x.size()), bits, 0}, absl::MakeSpan(codes));
  EXPECT_TRUE(s.ok()) << s;
  return codes;
}

// Q = [[1, 2, 3], [-3, -2, -1]], X = [1, 2, 3], Delta = 4 (native, differential) or 2
// (bit_serial), 3-bit ADC. Values worked out by hand from docs/onnx-convention.md 3.1.
TEST(SimBackend, NativeRoundsHalfToEvenAndSaturates) {
  auto sim = MakeSim();
  ASSERT_TRUE(sim->WriteTile(Tile(1, Scheme::kNative, {1, 2, 3, -3, -2, -1}, 3, 2)).ok());
  ASSERT_TRUE(sim->ConfigureAdc(1, {3, 4.0}).ok());
  // p = 14 -> 3.5 -> 4 -> clamped to 3; p = -10 -> -2.5 -> -2.
  EXPECT_EQ(RunOne(*sim, 1, {1, 2, 3}, 4, 1, 2), (std::vector<int16_t>{3, -2}));
  runtime::Counters c = *sim->ReadCounters();
  EXPECT_EQ(c["adc.saturations"], 1);
  EXPECT_EQ(c["adc.conversions"], 2);
  EXPECT_EQ(c["xbar.macs"], 6);
}

TEST(SimBackend, DifferentialUsesUnsignedAdcOnBothPolarities) {
  auto sim = MakeSim();
  ASSERT_TRUE(sim->WriteTile(Tile(2, Scheme::kDifferential, {1, 2, 3, -3, -2, -1}, 3, 2)).ok());
  ASSERT_TRUE(sim->ConfigureAdc(2, {3, 4.0}).ok());
  // o0: p+ = 14 -> 3.5 -> 4, p- = 0; o1: p+ = 0, p- = 10 -> 2.5 -> 2.
  EXPECT_EQ(RunOne(*sim, 2, {1, 2, 3}, 4, 2, 2), (std::vector<int16_t>{4, 0, 0, 2}));
}

TEST(SimBackend, BitSerialConvertsEachPlane) {
  auto sim = MakeSim();
  ASSERT_TRUE(sim->WriteTile(Tile(3, Scheme::kBitSerial, {1, 2, 3, -3, -2, -1}, 3, 2)).ok());
  ASSERT_TRUE(sim->ConfigureAdc(3, {3, 2.0}).ok());
  // planes x0 = [1,0,1], x1 = [0,1,1]; o0: 4 -> 2, 5 -> 2.5 -> 2; o1: -4 -> -2, -3 -> -1.5 -> -2.
  EXPECT_EQ(RunOne(*sim, 3, {1, 2, 3}, 2, 2, 2), (std::vector<int16_t>{2, 2, -2, -2}));
}

TEST(SimBackend, OverlappingWriteEvictsOldTile) {
  auto sim = MakeSim();
  ASSERT_TRUE(sim->WriteTile(Tile(1, Scheme::kNative, {1, 2, 3, -3, -2, -1}, 3, 2)).ok());
  ASSERT_TRUE(sim->WriteTile(Tile(2, Scheme::kNative, {1, 1, 1}, 3, 1, /*column_offset=*/7)).ok());
  ASSERT_TRUE(sim->ConfigureAdc(2, {7, 1.0}).ok());
  std::vector<uint8_t> x = {1, 1, 1};
  std::vector<int16_t> codes(2);
  absl::Status s = sim->RunTile(1, runtime::InputBatch{x.data(), 1, 3, 4, 0}, absl::MakeSpan(codes));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("tile 1 is not written"));
  // A tile beside it survives.
  ASSERT_TRUE(sim->WriteTile(Tile(3, Scheme::kNative, {1, 1, 1}, 3, 1, /*column_offset=*/11)).ok());
  EXPECT_TRUE(sim->ConfigureAdc(2, {7, 1.0}).ok());
}

TEST(SimBackend, RefusesBadCommands) {
  auto sim = MakeSim();
  runtime::TileImage bad = Tile(1, Scheme::kNative, {1, 2, 3, -3, -2, -1}, 3, 2);
  bad.tile.placement.columns = 5;
  EXPECT_THAT(std::string(sim->WriteTile(bad).message()), HasSubstr("5 columns for 2 outputs"));
  bad = Tile(1, Scheme::kNative, {1, 2, 3, -3, -2, -8}, 3, 2);
  EXPECT_THAT(std::string(sim->WriteTile(bad).message()), HasSubstr("code -8 at [1, 2] outside +-7"));
  ASSERT_TRUE(sim->WriteTile(Tile(1, Scheme::kNative, {1, 2, 3, -3, -2, -1}, 3, 2)).ok());
  EXPECT_THAT(std::string(sim->ConfigureAdc(1, {8, 1.0}).message()), HasSubstr("8 ADC bits, chip has 1..7"));
  std::vector<uint8_t> x = {1, 16, 1};
  std::vector<int16_t> codes(2);
  EXPECT_EQ(sim->RunTile(1, runtime::InputBatch{x.data(), 1, 3, 4, 0}, absl::MakeSpan(codes)).code(),
            absl::StatusCode::kFailedPrecondition);  // no ADC setting yet
  ASSERT_TRUE(sim->ConfigureAdc(1, {7, 1.0}).ok());
  EXPECT_THAT(std::string(sim->RunTile(1, runtime::InputBatch{x.data(), 1, 3, 4, 0}, absl::MakeSpan(codes)).message()),
              HasSubstr("input code 16 of vector 0 exceeds 15"));
}

// Direct transcription of docs/onnx-convention.md 3.1 for a whole layer, used to check the tiled path.
std::vector<int32_t> ReferenceS(const runtime::LayerMapping& l, const std::vector<uint8_t>& x, int m_count) {
  const int b = l.adc_bits;
  std::vector<int32_t> s(size_t(m_count * l.out_channels), 0);
  auto rne = [&](int64_t p) { return std::nearbyint(double(p) / l.adc_step); };
  for (int m = 0; m < m_count; ++m) {
    for (int o = 0; o < l.out_channels; ++o) {
      for (int g0 = 0; g0 < l.reduction; g0 += l.rows) {
        const int g1 = std::min(l.reduction, g0 + l.rows);
        auto dot = [&](auto weight, auto input) {
          int64_t p = 0;
          for (int k = g0; k < g1; ++k) p += int64_t(weight(l.weight_codes[size_t(o * l.reduction + k)])) * input(x[size_t(m * l.reduction + k)]);
          return p;
        };
        auto same = [](int v) { return v; };
        if (l.scheme == Scheme::kNative) {
          s[size_t(m * l.out_channels + o)] += int32_t(std::clamp(rne(dot(same, same)), -std::ldexp(1, b - 1), std::ldexp(1, b - 1) - 1));
        } else if (l.scheme == Scheme::kDifferential) {
          auto cp = std::clamp(rne(dot([](int q) { return std::max(q, 0); }, same)), 0.0, std::ldexp(1, b) - 1);
          auto cn = std::clamp(rne(dot([](int q) { return std::max(-q, 0); }, same)), 0.0, std::ldexp(1, b) - 1);
          s[size_t(m * l.out_channels + o)] += int32_t(cp - cn);
        } else {
          for (int j = 0; j < l.input_bits; ++j) {
            double c = std::clamp(rne(dot(same, [j](int v) { return (v >> j) & 1; })), -std::ldexp(1, b - 1), std::ldexp(1, b - 1) - 1);
            s[size_t(m * l.out_channels + o)] += int32_t(c) << j;
          }
        }
      }
    }
  }
  return s;
}

TEST(SimBackend, LayerMatchesDesignArithmeticForEveryScheme) {
  std::mt19937 rng(7);
  for (Scheme scheme : {Scheme::kNative, Scheme::kDifferential, Scheme::kBitSerial}) {
    for (double delta : {1.0, 3.0, 7.5, 23.0}) {
      auto sim = MakeSim();
      runtime::LayerMapping l;
      l.name = "layer";
      l.out_channels = 13;
      l.reduction = 150;
      l.scheme = scheme;
      l.rows = 64;
      l.adc_bits = 5;
      l.adc_step = delta;
      l.weight_bits = 4;
      l.input_bits = 4;
      for (int i = 0; i < 13 * 150; ++i) l.weight_codes.push_back(int8_t(int(rng() % 15) - 7));
      uint32_t id = 0;
      int column = 0;
      const int per = runtime::ColumnsPerWeight(scheme, 4, 1);
      for (int g0 = 0; g0 < 150; g0 += 64) {
        for (int o0 = 0; o0 < 13; o0 += 5) {
          runtime::TileSpec t;
          t.id = id++;
          t.row_group = g0 / 64;
          t.k_begin = g0;
          t.k_end = std::min(150, g0 + 64);
          t.out_begin = o0;
          t.out_end = std::min(13, o0 + 5);
          t.placement.macro = column / 128;
          t.placement.column_offset = column % 128;
          t.placement.columns = t.outputs() * per;
          if (t.placement.column_offset + t.placement.columns > 128) {
            t.placement.macro++;
            t.placement.column_offset = 0;
          }
          column = t.placement.macro * 128 + t.placement.column_offset + t.placement.columns;
          l.tiles.push_back(t);
        }
      }
      ASSERT_TRUE(sim->LoadLayer(l).ok());
      const int m_count = 9;
      std::vector<uint8_t> x(size_t(m_count * 150));
      for (uint8_t& v : x) v = uint8_t(rng() % 16);
      std::vector<int32_t> sums(size_t(m_count * 13));
      ASSERT_TRUE(sim->RunLayer(l, runtime::InputBatch{x.data(), m_count, 150, 4, 0}, absl::MakeSpan(sums)).ok());
      EXPECT_EQ(sums, ReferenceS(l, x, m_count)) << runtime::SchemeName(scheme) << " delta " << delta;
    }
  }
}

TEST(SimBackend, FactoryUsesTargetOrChipFile) {
  runtime::DeviceUri uri;
  uri.scheme = "sim";
  runtime::OpenOptions options;
  runtime::ChipSpec target = DefaultSpec();
  target.name = "custom";
  target.macros = 2;
  options.target = target;
  absl::StatusOr<std::unique_ptr<runtime::Backend>> b = OpenSimBackend(uri, options);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*b)->info().spec.name, "custom");
  EXPECT_EQ((*b)->info().backend, "sim");
  b = OpenSimBackend(uri, {});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*b)->info().spec.name, "pim-proto-65nm");
}

TEST(SimBackend, FactoryAppliesNonIdealProfileAndRejectsBadOnes) {
  auto write_profile = [](const std::string& name, const std::string& fields) {
    const std::string path = ::testing::TempDir() + "/" + name + ".textproto";
    std::ifstream in(runtime::DefaultChipFilePath());
    std::stringstream text;
    text << in.rdbuf();
    std::string s = text.str();
    s.replace(s.find("name: \"ideal\""), 13, "name: \"" + name + "\" " + fields);
    std::ofstream(path) << s;
    return path;
  };
  runtime::DeviceUri uri;
  uri.scheme = "sim";
  uri.profile_path = write_profile("noisy", "noise_sigma_lsb: 0.3");
  absl::StatusOr<std::unique_ptr<runtime::Backend>> b = OpenSimBackend(uri, {});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_THAT((*b)->info().firmware_version, HasSubstr("non-ideal (profile noisy"));
  uri.profile_path = write_profile("bad", "noise_sigma_lsb: -1");
  b = OpenSimBackend(uri, {});
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(b.status().message()),
              HasSubstr("profile field 'noise_sigma_lsb' is -1, must be in [0, 16]"));
  uri.profile_path = "/nonexistent/chip.textproto";
  EXPECT_EQ(OpenSimBackend(uri, {}).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace pim::sim
