// SimBackend::RunLayer (the fused kernel) against the default Backend::RunLayer over RunTile.
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

// A layer cut into row groups x output chunks, tiles spread over macros and banks.
runtime::LayerMapping MakeLayer(Scheme scheme, int out, int k, int rows, int adc_bits, int input_bits,
                                double step, std::mt19937& rng, int outputs_per_tile = 0) {
  const runtime::ChipSpec spec = DefaultSpec();
  runtime::LayerMapping l;
  l.name = "layer";
  l.out_channels = out;
  l.reduction = k;
  l.scheme = scheme;
  l.rows = rows;
  l.adc_bits = adc_bits;
  l.adc_step = step;
  l.weight_bits = 4;
  l.input_bits = input_bits;
  std::uniform_int_distribution<int> q(-7, 7);
  for (int i = 0; i < out * k; ++i) l.weight_codes.push_back(int8_t(q(rng)));
  const int per_weight = runtime::ColumnsPerWeight(scheme, 4, spec.cell_bits);
  const int chunk = outputs_per_tile > 0 ? outputs_per_tile : spec.columns / per_weight;
  uint32_t id = 0;
  for (int g = 0; g * rows < k; ++g) {
    for (int o0 = 0; o0 < out; o0 += chunk, ++id) {
      runtime::TileSpec t;
      t.id = id;
      t.row_group = g;
      t.k_begin = g * rows;
      t.k_end = std::min(k, (g + 1) * rows);
      t.out_begin = o0;
      t.out_end = std::min(out, o0 + chunk);
      t.placement.macro = int(id % 8);
      t.placement.bank = int(id / 8 % 8);
      t.placement.columns = t.outputs() * per_weight;
      l.tiles.push_back(t);
    }
  }
  return l;
}

struct LayerRun {
  std::vector<int32_t> sums;
  runtime::Counters counters;
};

LayerRun RunOn(const runtime::LayerMapping& l, const NonIdealityParams& profile, bool fused, int batch,
          const std::vector<uint8_t>& x, int vectors, int threads = 1) {
  SimParams params;
  params.spec = DefaultSpec();
  params.profile = profile;
  params.seed = 11;
  params.kernel.threads = threads;
  auto sim = SimBackend::Create(params);
  EXPECT_TRUE(sim.ok());
  EXPECT_TRUE((*sim)->LoadLayer(l).ok());
  LayerRun r;
  r.sums.assign(size_t(vectors) * l.out_channels, 0);
  for (int m0 = 0; m0 < vectors; m0 += batch) {
    const int n = std::min(batch, vectors - m0);
    runtime::InputBatch in{x.data() + size_t(m0) * l.reduction, n, l.reduction, l.input_bits, uint64_t(m0)};
    auto out = absl::MakeSpan(r.sums).subspan(size_t(m0) * l.out_channels, size_t(n) * l.out_channels);
    absl::Status s = fused ? (*sim)->RunLayer(l, in, out) : (*sim)->runtime::Backend::RunLayer(l, in, out);
    EXPECT_TRUE(s.ok()) << s;
  }
  r.counters = *(*sim)->ReadCounters();
  return r;
}

NonIdealityParams Typical() {
  NonIdealityParams p;
  p.name = "typical";
  p.gain_sigma = 0.02;
  p.offset_sigma_lsb = 0.4;
  p.inl_bow_lsb = 0.7;
  p.dnl_sigma_lsb = 0.2;
  p.noise_sigma_lsb = 0.6;
  return p;
}

TEST(SimBackendFused, RunLayerEqualsTileByTileForEverySchemeIdealAndNoisy) {
  std::mt19937 rng(3);
  for (const NonIdealityParams& profile : {NonIdealityParams{}, Typical()}) {
    for (Scheme scheme : {Scheme::kNative, Scheme::kDifferential, Scheme::kBitSerial}) {
      for (int rows : {64, 27}) {
        const runtime::LayerMapping l = MakeLayer(scheme, 45, 150, rows, 5, 3, 3.5, rng, 13);
        std::vector<uint8_t> x(size_t(9) * l.reduction);
        for (auto& v : x) v = uint8_t(rng() % 8);
        LayerRun tiles = RunOn(l, profile, false, 9, x, 9);
        LayerRun fused = RunOn(l, profile, true, 9, x, 9);
        const std::string what = std::string(runtime::SchemeName(scheme)) + " R=" + std::to_string(rows) + " " + profile.name;
        ASSERT_EQ(fused.sums, tiles.sums) << what;
        for (const char* c : {"xbar.macs", "adc.conversions", "adc.saturations", "tiles.run", "vectors.run",
                              "energy.adc_pj", "energy.array_pj", "link.bytes", "adc.rounds"}) {
          EXPECT_DOUBLE_EQ(fused.counters[c], tiles.counters[c]) << c << " " << what;
        }
        // Macros run in parallel on RunLayer, one command after another tile by tile.
        EXPECT_LT(fused.counters["cycles.device"], tiles.counters["cycles.device"]) << what;
      }
    }
  }
}

TEST(SimBackendFused, NoisyLayerIdenticalForBatchSizesAndThreads) {
  std::mt19937 rng(4);
  const runtime::LayerMapping l = MakeLayer(Scheme::kNative, 40, 200, 64, 7, 4, 6.0, rng);
  std::vector<uint8_t> x(size_t(64) * l.reduction);
  for (auto& v : x) v = uint8_t(rng() % 16);
  const LayerRun ref = RunOn(l, Typical(), true, 64, x, 64, 1);
  for (int threads : {1, 2}) {
    for (int batch : {1, 7, 64}) {
      EXPECT_EQ(RunOn(l, Typical(), true, batch, x, 64, threads).sums, ref.sums)
          << "threads=" << threads << " batch=" << batch;
    }
  }
  EXPECT_EQ(RunOn(l, Typical(), false, 7, x, 64).sums, ref.sums) << "tile-by-tile path";
}

TEST(SimBackendFused, OverwrittenLayerFallsBackAndFailsLikeTheDevice) {
  std::mt19937 rng(5);
  const runtime::ChipSpec spec = DefaultSpec();
  SimParams params;
  params.spec = spec;
  auto sim = SimBackend::Create(params);
  ASSERT_TRUE(sim.ok());
  const runtime::LayerMapping a = MakeLayer(Scheme::kNative, 8, 64, 64, 7, 4, 2.0, rng);
  runtime::LayerMapping b = MakeLayer(Scheme::kNative, 8, 64, 64, 7, 4, 2.0, rng);
  b.name = "other";
  for (auto& t : b.tiles) t.id += 100;  // same cells, other ids: loading b evicts a
  ASSERT_TRUE((*sim)->LoadLayer(a).ok());
  ASSERT_TRUE((*sim)->LoadLayer(b).ok());
  std::vector<uint8_t> x(64, 1);
  std::vector<int32_t> s(8);
  absl::Status st = (*sim)->RunLayer(a, runtime::InputBatch{x.data(), 1, 64, 4, 0}, absl::MakeSpan(s));
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
}

}  // namespace
}  // namespace pim::sim
