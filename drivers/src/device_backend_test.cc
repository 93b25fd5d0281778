// DeviceBackend over an in-memory pipe against the same chip run locally: results must be
// identical, clean or damaged, across resets; failures must be clear and bounded in time.
#include "pim/drivers/device_backend.h"

#include <vector>

#include "engine_thread.h"
#include "gtest/gtest.h"
#include "layer_fixture.h"
#include "pim/drivers/device_engine.h"
#include "pim/drivers/faulty_transport.h"
#include "pim/drivers/memory_transport.h"
#include "reference_chip.h"

namespace pim::drivers {
namespace {

using runtime::Scheme;
using testing::DefaultSpec;
using testing::EngineThread;
using testing::RandomInputs;
using testing::RandomLayer;
using testing::ReferenceChip;

struct Rig {
  std::unique_ptr<EngineThread> device;
  std::unique_ptr<DeviceBackend> backend;
  FaultyTransport* faulty = nullptr;
};

Rig MakeRig(const FaultRates& rates = {}, const DeviceBackendOptions& options = DeviceBackendOptions(),
            uint32_t device_frame = 2048) {
  auto [host, dev] = MakeMemoryTransportPair("mem");
  DeviceIdentity id;
  id.max_frame_bytes = device_frame;  // small frames: many requests per layer
  Rig rig;
  rig.device = std::make_unique<EngineThread>(
      std::move(dev), std::make_unique<DeviceEngine>(
                          []() -> absl::StatusOr<std::unique_ptr<runtime::Backend>> {
                            return std::make_unique<ReferenceChip>(DefaultSpec());
                          },
                          id, 3));
  std::unique_ptr<Transport> transport = std::move(host);
  if (rates.total() > 0) {
    auto f = std::make_unique<FaultyTransport>(std::move(transport), rates, rates, 17);
    rig.faulty = f.get();
    transport = std::move(f);
  }
  absl::StatusOr<std::unique_ptr<DeviceBackend>> backend = DeviceBackend::Open(std::move(transport), options);
  EXPECT_TRUE(backend.ok()) << backend.status();
  if (backend.ok()) rig.backend = std::move(*backend);
  return rig;
}

// S of `layer` for `inputs` on a local ReferenceChip through the runtime's default
// LoadLayer/RunLayer: the reference the link must reproduce bit for bit.
std::vector<int32_t> LocalSums(const runtime::LayerMapping& layer, const std::vector<uint8_t>& inputs,
                               int vectors, uint64_t first_sample) {
  ReferenceChip chip(DefaultSpec());
  EXPECT_TRUE(chip.LoadLayer(layer).ok());
  std::vector<int32_t> sums(size_t(vectors) * size_t(layer.out_channels));
  runtime::InputBatch batch{inputs.data(), vectors, layer.reduction, layer.input_bits, first_sample};
  EXPECT_TRUE(chip.RunLayer(layer, batch, absl::MakeSpan(sums)).ok());
  return sums;
}

absl::StatusOr<std::vector<int32_t>> DeviceSums(DeviceBackend& backend, const runtime::LayerMapping& layer,
                                                const std::vector<uint8_t>& inputs, int vectors,
                                                uint64_t first_sample) {
  if (absl::Status s = backend.LoadLayer(layer); !s.ok()) return s;
  std::vector<int32_t> sums(size_t(vectors) * size_t(layer.out_channels));
  runtime::InputBatch batch{inputs.data(), vectors, layer.reduction, layer.input_bits, first_sample};
  if (absl::Status s = backend.RunLayer(layer, batch, absl::MakeSpan(sums)); !s.ok()) return s;
  return sums;
}

class DeviceBackendScheme : public ::testing::TestWithParam<Scheme> {};

TEST_P(DeviceBackendScheme, LayerOverACleanLinkMatchesTheLocalChip) {
  Rig rig = MakeRig();
  ASSERT_NE(rig.backend, nullptr);
  const runtime::ChipSpec spec = DefaultSpec();
  runtime::LayerMapping layer = RandomLayer(spec, GetParam(), 40, 150, 1, 99, 16);
  const int vectors = 70;
  std::vector<uint8_t> inputs = RandomInputs(vectors, layer.reduction, layer.input_bits, 5);
  absl::StatusOr<std::vector<int32_t>> got = DeviceSums(*rig.backend, layer, inputs, vectors, 1000);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, LocalSums(layer, inputs, vectors, 1000));
  // first_sample travels: another start gives other (dithered) codes.
  EXPECT_NE(*got, LocalSums(layer, inputs, vectors, 1001));
  EXPECT_GT(rig.backend->link_stats().requests, 2 * layer.tiles.size());
}

INSTANTIATE_TEST_SUITE_P(Schemes, DeviceBackendScheme,
                         ::testing::Values(Scheme::kNative, Scheme::kDifferential, Scheme::kBitSerial));

TEST(DeviceBackend, RunTileMatchesTheLocalChipAndVerifyReadsBack) {
  DeviceBackendOptions options;
  options.verify_writes = true;
  Rig rig = MakeRig({}, options);
  ASSERT_NE(rig.backend, nullptr);
  const runtime::ChipSpec spec = DefaultSpec();
  runtime::LayerMapping layer = RandomLayer(spec, Scheme::kNative, 20, 64, 1, 4);
  ASSERT_TRUE(rig.backend->LoadLayer(layer).ok());
  ReferenceChip local(spec);
  ASSERT_TRUE(local.LoadLayer(layer).ok());
  const int vectors = 300;  // several requests for one tile
  std::vector<uint8_t> inputs = RandomInputs(vectors, 64, 4, 8);
  runtime::InputBatch batch{inputs.data(), vectors, 64, 4, 77};
  std::vector<int16_t> a(size_t(vectors) * 20), b(a.size());
  ASSERT_TRUE(rig.backend->RunTile(1, batch, absl::MakeSpan(a)).ok());
  ASSERT_TRUE(local.RunTile(1, batch, absl::MakeSpan(b)).ok());
  EXPECT_EQ(a, b);
}

struct FaultCase {
  const char* name;
  FaultRates rates;
};

class DeviceBackendFaults : public ::testing::TestWithParam<FaultCase> {};

TEST_P(DeviceBackendFaults, DamagedLinkGivesIdenticalResults) {
  Rig rig = MakeRig(GetParam().rates);
  ASSERT_NE(rig.backend, nullptr);
  const runtime::ChipSpec spec = DefaultSpec();
  runtime::LayerMapping layer = RandomLayer(spec, Scheme::kDifferential, 48, 200, 1, 21, 16);
  const int vectors = 120;
  std::vector<uint8_t> inputs = RandomInputs(vectors, layer.reduction, layer.input_bits, 9);
  absl::StatusOr<std::vector<int32_t>> got = DeviceSums(*rig.backend, layer, inputs, vectors, 0);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, LocalSums(layer, inputs, vectors, 0));
  const FaultCounts& to = rig.faulty->to_device_counts();
  const FaultCounts& from = rig.faulty->from_device_counts();
  EXPECT_GT(to.dropped + to.corrupted + to.duplicated + to.truncated + to.stalled +
                from.dropped + from.corrupted + from.duplicated + from.truncated + from.stalled,
            0u)
      << "the fault injector never fired: the test proves nothing";
}

FaultRates Only(double FaultRates::*kind, double rate) {
  FaultRates r;
  r.*kind = rate;
  r.stall_duration = absl::Milliseconds(40);
  return r;
}

FaultRates Everything(double rate) {
  FaultRates r;
  r.drop = r.corrupt = r.duplicate = r.truncate = r.stall = rate;
  r.stall_duration = absl::Milliseconds(40);
  return r;
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, DeviceBackendFaults,
    ::testing::Values(FaultCase{"drop", Only(&FaultRates::drop, 0.05)},
                      FaultCase{"corrupt", Only(&FaultRates::corrupt, 0.05)},
                      FaultCase{"duplicate", Only(&FaultRates::duplicate, 0.05)},
                      FaultCase{"truncate", Only(&FaultRates::truncate, 0.05)},
                      FaultCase{"stall", Only(&FaultRates::stall, 0.03)},
                      FaultCase{"all_1pc", Everything(0.01)},
                      FaultCase{"all_3pc", Everything(0.03)}),
    [](const ::testing::TestParamInfo<FaultCase>& info) { return std::string(info.param.name); });

TEST(DeviceBackend, DeviceResetMidRunIsRepairedTransparently) {
  Rig rig = MakeRig();
  ASSERT_NE(rig.backend, nullptr);
  const runtime::ChipSpec spec = DefaultSpec();
  runtime::LayerMapping layer = RandomLayer(spec, Scheme::kNative, 40, 150, 1, 5, 16);
  const int vectors = 90;
  std::vector<uint8_t> inputs = RandomInputs(vectors, layer.reduction, layer.input_bits, 3);
  ASSERT_TRUE(rig.backend->LoadLayer(layer).ok());
  rig.device->ResetAfterFrames(7);  // in the middle of the RunLayer's requests
  std::vector<int32_t> sums(size_t(vectors) * size_t(layer.out_channels));
  runtime::InputBatch batch{inputs.data(), vectors, layer.reduction, layer.input_bits, 0};
  absl::Status s = rig.backend->RunLayer(layer, batch, absl::MakeSpan(sums));
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(sums, LocalSums(layer, inputs, vectors, 0));
  EXPECT_EQ(rig.backend->resets_recovered(), 1);
  EXPECT_EQ(rig.device->stats().boots, 2u);
}

TEST(DeviceBackend, DeviceResetStopsWithAClearErrorWhenReloadIsOff) {
  DeviceBackendOptions options;
  options.reload_on_reset = false;
  Rig rig = MakeRig({}, options);
  ASSERT_NE(rig.backend, nullptr);
  runtime::LayerMapping layer = RandomLayer(DefaultSpec(), Scheme::kNative, 16, 64, 1, 5);
  ASSERT_TRUE(rig.backend->LoadLayer(layer).ok());
  rig.device->ResetDevice();
  std::vector<uint8_t> inputs = RandomInputs(4, 64, 4, 3);
  std::vector<int32_t> sums(4 * 16);
  absl::Status s = rig.backend->RunLayer(layer, runtime::InputBatch{inputs.data(), 4, 64, 4, 0},
                                         absl::MakeSpan(sums));
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  EXPECT_NE(s.message().find("device reset detected"), std::string::npos) << s;
  EXPECT_NE(s.message().find("reloading after a reset is disabled"), std::string::npos) << s;
}

TEST(DeviceBackend, DeviceRefusalNamesTheCommandAndTheReason) {
  Rig rig = MakeRig();
  ASSERT_NE(rig.backend, nullptr);
  runtime::LayerMapping layer = RandomLayer(DefaultSpec(), Scheme::kNative, 16, 64, 1, 5);
  ASSERT_TRUE(rig.backend->LoadLayer(layer).ok());
  absl::Status s = rig.backend->ConfigureAdc(1, runtime::AdcSetting{9, 1.0});
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(s.message().find("device refused ConfigureAdc of tile 1 (UNSUPPORTED)"), std::string::npos) << s;
  EXPECT_NE(s.message().find("adc_bits = 9"), std::string::npos) << s;
}

TEST(DeviceBackend, StalledDeviceFailsWithinTheConfiguredTimeout) {
  DeviceBackendOptions options;
  options.link.timeout = absl::Milliseconds(250);
  Rig rig = MakeRig({}, options);
  ASSERT_NE(rig.backend, nullptr);
  runtime::LayerMapping layer = RandomLayer(DefaultSpec(), Scheme::kNative, 16, 64, 1, 5);
  ASSERT_TRUE(rig.backend->LoadLayer(layer).ok());
  rig.device->Pause(true);
  std::vector<uint8_t> inputs = RandomInputs(4, 64, 4, 3);
  std::vector<int32_t> sums(4 * 16);
  const absl::Time start = absl::Now();
  absl::Status s = rig.backend->RunLayer(layer, runtime::InputBatch{inputs.data(), 4, 64, 4, 0},
                                         absl::MakeSpan(sums));
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(250 + 1500));  // timeout plus slack for a loaded box
}

TEST(DeviceBackend, CountersIncludeTheChipAndTheLink) {
  Rig rig = MakeRig();
  ASSERT_NE(rig.backend, nullptr);
  runtime::LayerMapping layer = RandomLayer(DefaultSpec(), Scheme::kNative, 16, 64, 1, 5);
  std::vector<uint8_t> inputs = RandomInputs(10, 64, 4, 3);
  ASSERT_TRUE(DeviceSums(*rig.backend, layer, inputs, 10, 0).ok());
  absl::StatusOr<runtime::Counters> c = rig.backend->ReadCounters();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->at("adc.conversions"), 10.0 * 16);
  EXPECT_GT(c->at("link.bytes"), c->at("link.tensor_bytes"));
  EXPECT_GT(c->at("device.link.bytes_in"), 0.0);
}

}  // namespace
}  // namespace pim::drivers
