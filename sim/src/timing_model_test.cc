#include "pim/sim/timing_model.h"

#include <gtest/gtest.h>

#include <random>

#include "pim/proto/chip.pb.h"
#include "pim/runtime/chip_file.h"
#include "pim/sim/sim_backend.h"

namespace pim::sim {
namespace {

using runtime::Scheme;

runtime::ChipSpec DefaultSpec() {
  absl::StatusOr<proto::ChipFile> file = runtime::ReadChipFile(runtime::DefaultChipFilePath());
  EXPECT_TRUE(file.ok()) << file.status();
  return *runtime::ChipSpecFromProto(file->spec());
}

// The figures derived by hand in docs/chip-model.md for the default target.
TEST(TimingModel, DefaultTargetPeakMatchesDocs) {
  const TimingModel t(DefaultSpec());
  const PeakFigures p = t.Peak(4, 4);
  EXPECT_EQ(p.outputs_per_macro, 32);  // 128 columns / 4 one-bit cells per 4-bit weight
  EXPECT_DOUBLE_EQ(p.round_cycles, 16);  // load 2 + settle 4 + SAR 7+1 + readout 32/16
  EXPECT_DOUBLE_EQ(p.macs_per_second, 8 * 64 * 32 / 16.0 * 200e6);  // 204.8 GMAC/s
  // Per round and macro: array 64*128*0.0025 + 64*0.02, ADC 32*7*0.12, digital 32*(0.05+0.1).
  const double pj = 64 * 128 * 0.0025 + 64 * 0.02 + 32 * 7 * 0.12 + 32 * (0.05 + 0.1);
  EXPECT_DOUBLE_EQ(p.energy_per_mac_pj, pj / (64 * 32));
  EXPECT_NEAR(p.tops_per_watt, 2 / (pj / 2048), 1e-9);
}

TEST(TimingModel, TileCommandCosts) {
  const runtime::ChipSpec spec = DefaultSpec();
  const TimingModel t(spec);
  runtime::TileSpec tile;
  tile.k_end = 50;
  tile.out_end = 10;
  tile.placement.columns = 40;
  const Cost native = t.RunTile(tile, Scheme::kNative, 4, 5, 3, /*bank_switch=*/true);
  EXPECT_DOUBLE_EQ(native.rounds, 3);
  EXPECT_DOUBLE_EQ(native.conversions, 30);
  EXPECT_DOUBLE_EQ(native.device_cycles, 3 * (2 + 4 + 6 + 1) + 4);
  EXPECT_DOUBLE_EQ(native.link_bytes, 3 * (25 + 10));
  EXPECT_DOUBLE_EQ(native.link_cycles, 105 / 1.5e6 * 200e6);
  const Cost serial = t.RunTile(tile, Scheme::kBitSerial, 4, 5, 3, false);
  EXPECT_DOUBLE_EQ(serial.rounds, 12);
  EXPECT_DOUBLE_EQ(serial.energy_adc_pj, 120 * 5 * 0.12);
  const Cost write = t.WriteTile(50, 40);
  EXPECT_DOUBLE_EQ(write.device_cycles, 50);
  EXPECT_DOUBLE_EQ(write.energy_weight_pj, 50 * 40 * 0.05);
  EXPECT_DOUBLE_EQ(write.link_bytes, 250);
}

TEST(TimingModel, LayerRunsMacrosInParallelAndSwitchesBanks) {
  const TimingModel t(DefaultSpec());
  runtime::LayerMapping l;
  l.scheme = Scheme::kNative;
  l.input_bits = 4;
  l.adc_bits = 7;
  for (int i = 0; i < 3; ++i) {
    runtime::TileSpec tile;
    tile.id = uint32_t(i);
    tile.k_end = 64;
    tile.out_end = 32;
    tile.placement.columns = 128;
    tile.placement.macro = i == 2 ? 0 : i;  // tiles 0 and 2 share macro 0 (banks 0 and 1)
    tile.placement.bank = i == 2 ? 1 : 0;
    l.tiles.push_back(tile);
  }
  std::vector<int> bank(8, -1);
  const Cost c = t.RunLayer(l, 10, &bank);
  EXPECT_DOUBLE_EQ(c.device_cycles, 2 * (10 * 16 + 4));  // macro 0: two tiles, two switches
  EXPECT_DOUBLE_EQ(c.bank_switches, 3);
  EXPECT_EQ(bank[0], 1);
  const Cost again = t.RunLayer(l, 10, &bank);
  EXPECT_DOUBLE_EQ(again.bank_switches, 2);  // macro 1 kept its bank
}

// A layer that fills every macro's rows and columns reaches the derived peak through the
// simulator's own counters, which is what `pimrun --profile` reports.
TEST(TimingModel, FullLayerOnSimReachesPeak) {
  const runtime::ChipSpec spec = DefaultSpec();
  SimParams params;
  params.spec = spec;
  auto sim = SimBackend::Create(params);
  ASSERT_TRUE(sim.ok());
  runtime::LayerMapping l;
  l.name = "full";
  l.scheme = Scheme::kNative;
  l.out_channels = 32 * 8;
  l.reduction = 64;
  l.rows = 64;
  l.adc_bits = 7;
  l.adc_step = 10;
  l.weight_bits = 4;
  l.input_bits = 4;
  l.weight_codes.assign(size_t(l.out_channels) * l.reduction, 3);
  for (int m = 0; m < 8; ++m) {
    runtime::TileSpec tile;
    tile.id = uint32_t(m);
    tile.k_end = 64;
    tile.out_begin = 32 * m;
    tile.out_end = 32 * (m + 1);
    tile.placement.macro = m;
    tile.placement.columns = 128;
    l.tiles.push_back(tile);
  }
  ASSERT_TRUE((*sim)->LoadLayer(l).ok());
  runtime::Counters before = *(*sim)->ReadCounters();
  const int vectors = 100;
  std::vector<uint8_t> x(size_t(vectors) * 64, 5);
  std::vector<int32_t> s(size_t(vectors) * l.out_channels);
  ASSERT_TRUE((*sim)->RunLayer(l, runtime::InputBatch{x.data(), vectors, 64, 4, 0}, absl::MakeSpan(s)).ok());
  runtime::Counters after = *(*sim)->ReadCounters();
  const double cycles = after["cycles.device"] - before["cycles.device"];
  const double macs = double(vectors) * l.out_channels * l.reduction;
  const double macs_per_second = macs / (cycles / (spec.timing.clock_mhz * 1e6));
  EXPECT_DOUBLE_EQ(macs_per_second, TimingModel(spec).Peak(4, 4).macs_per_second);
  EXPECT_DOUBLE_EQ((after["array.cell_cycles_used"] - before["array.cell_cycles_used"]) /
                       (after["array.cell_cycles_available"] - before["array.cell_cycles_available"]),
                   1.0);
}

}  // namespace
}  // namespace pim::sim
