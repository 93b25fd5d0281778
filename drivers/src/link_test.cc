// The Link and the DeviceEngine together over an in-memory pipe, clean and damaged.
#include "pim/drivers/link.h"

#include <vector>

#include "engine_thread.h"
#include "gtest/gtest.h"
#include "pim/drivers/device_engine.h"
#include "pim/drivers/faulty_transport.h"
#include "pim/drivers/memory_transport.h"
#include "reference_chip.h"

namespace pim::drivers {
namespace {

namespace wire = proto::wire;
using testing::DefaultSpec;
using testing::EngineThread;
using testing::ReferenceChip;

std::unique_ptr<DeviceEngine> MakeEngine(DeviceIdentity id = {}) {
  return std::make_unique<DeviceEngine>(
      []() -> absl::StatusOr<std::unique_ptr<runtime::Backend>> {
        return std::make_unique<ReferenceChip>(DefaultSpec());
      },
      id, 11);
}

wire::Request CountersRequest() {
  wire::Request r;
  r.mutable_read_counters();
  return r;
}

TEST(Link, HandshakeNegotiatesLimitsAndReportsTheChip) {
  auto [host, dev] = MakeMemoryTransportPair("mem");
  DeviceIdentity id;
  id.max_frame_bytes = 4096;
  id.window = 4;
  id.serial_number = "SN-42";
  EngineThread device(std::move(dev), MakeEngine(id));
  LinkOptions options;
  options.window = 16;
  Link link(std::move(host), options);
  absl::StatusOr<wire::HelloResponse> hello = link.Open();
  ASSERT_TRUE(hello.ok()) << hello.status();
  EXPECT_EQ(hello->chip().name(), "pim-proto-65nm");
  EXPECT_EQ(hello->serial_number(), "SN-42");
  EXPECT_EQ(link.max_frame_bytes(), 4096u);
  EXPECT_EQ(link.window(), 4u);
  EXPECT_NE(link.session_nonce(), 0u);
  EXPECT_EQ(link.session_nonce(), hello->session_nonce());
}

TEST(Link, RequestsBeforeTheHandshakeFailClearly) {
  auto [host, dev] = MakeMemoryTransportPair("mem");
  Link link(std::move(host));
  absl::StatusOr<wire::Response> r = link.Call(CountersRequest());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("not open"), std::string::npos) << r.status();
}

TEST(Link, ManyRequestsInAWindowEachAnsweredOnce) {
  auto [host, dev] = MakeMemoryTransportPair("mem");
  EngineThread device(std::move(dev), MakeEngine());
  Link link(std::move(host));
  ASSERT_TRUE(link.Open().ok());
  std::vector<int> seen(200, 0);
  absl::Status s = link.Transact(
      seen.size(), [](size_t) -> absl::StatusOr<wire::Request> { return CountersRequest(); },
      [&](size_t i, const wire::Response& r) {
        EXPECT_TRUE(r.has_read_counters());
        ++seen[i];
        return absl::OkStatus();
      });
  ASSERT_TRUE(s.ok()) << s;
  for (int n : seen) EXPECT_EQ(n, 1);
  EXPECT_EQ(link.stats().retransmissions, 0u);
}

TEST(Link, SurvivesHeavyDamageInBothDirections) {
  auto [host, dev] = MakeMemoryTransportPair("mem");
  EngineThread device(std::move(dev), MakeEngine());
  FaultRates rates;
  rates.drop = rates.corrupt = rates.duplicate = rates.truncate = 0.04;
  rates.stall = 0.01;
  rates.stall_duration = absl::Milliseconds(30);
  auto faulty = std::make_unique<FaultyTransport>(std::move(host), rates, rates, 5);
  FaultyTransport* f = faulty.get();
  Link link(std::move(faulty));
  ASSERT_TRUE(link.Open().ok());
  std::vector<int> seen(400, 0);
  absl::Status s = link.Transact(
      seen.size(), [](size_t) -> absl::StatusOr<wire::Request> { return CountersRequest(); },
      [&](size_t i, const wire::Response&) {
        ++seen[i];
        return absl::OkStatus();
      });
  ASSERT_TRUE(s.ok()) << s;
  for (int n : seen) EXPECT_EQ(n, 1);
  EXPECT_GT(f->to_device_counts().dropped + f->from_device_counts().dropped, 0u);
  EXPECT_GT(link.stats().retransmissions + link.stats().fast_retransmissions, 0u);
  EXPECT_GT(device.stats().duplicates_answered, 0u);
}

TEST(Link, StalledDeviceGivesDeadlineExceededWithinTheTimeout) {
  auto [host, dev] = MakeMemoryTransportPair("mem");
  EngineThread device(std::move(dev), MakeEngine());
  LinkOptions options;
  options.timeout = absl::Milliseconds(300);
  Link link(std::move(host), options);
  ASSERT_TRUE(link.Open().ok());
  device.Pause(true);
  const absl::Time start = absl::Now();
  absl::StatusOr<wire::Response> r = link.Call(CountersRequest());
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_NE(r.status().message().find("no answer from the device"), std::string::npos) << r.status();
  EXPECT_GE(took, absl::Milliseconds(290));
  EXPECT_LT(took, absl::Milliseconds(300 + 1500));  // the timeout plus scheduling slack on a loaded CI box
  // The link is closed now; a later call says so at once.
  EXPECT_EQ(link.Call(CountersRequest()).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(Link, UnpluggedDeviceGivesUnavailableAtOnce) {
  auto [host, dev] = MakeMemoryTransportPair("mem");
  EngineThread device(std::move(dev), MakeEngine());
  LinkOptions options;
  options.timeout = absl::Seconds(5);
  Link link(std::move(host), options);
  ASSERT_TRUE(link.Open().ok());
  device.Unplug();
  const absl::Time start = absl::Now();
  absl::StatusOr<wire::Response> r = link.Call(CountersRequest());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));  // far below the 5 s timeout
}

TEST(Link, DeviceResetIsReportedAsSuch) {
  auto [host, dev] = MakeMemoryTransportPair("mem");
  EngineThread device(std::move(dev), MakeEngine());
  Link link(std::move(host));
  ASSERT_TRUE(link.Open().ok());
  const uint32_t before = link.session_nonce();
  device.ResetDevice();
  absl::StatusOr<wire::Response> r = link.Call(CountersRequest());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(IsDeviceReset(r.status())) << r.status();
  EXPECT_NE(r.status().message().find("device reset detected"), std::string::npos);
  ASSERT_TRUE(link.Open().ok());
  EXPECT_NE(link.session_nonce(), before);
  EXPECT_TRUE(link.Call(CountersRequest()).ok());
}

TEST(Link, OversizeRequestIsRefusedBeforeSending) {
  auto [host, dev] = MakeMemoryTransportPair("mem");
  DeviceIdentity id;
  id.max_frame_bytes = 512;
  EngineThread device(std::move(dev), MakeEngine(id));
  Link link(std::move(host));
  ASSERT_TRUE(link.Open().ok());
  wire::Request r;
  r.mutable_write_tile()->set_codes(std::string(600, '\1'));
  absl::StatusOr<wire::Response> got = link.Call(r);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(got.status().message().find("the negotiated frame holds 498"), std::string::npos) << got.status();
}

TEST(DeviceEngine, AnswersGarbageWithNaksAndAWrongVersionWithAnError) {
  DeviceEngine engine(
      []() -> absl::StatusOr<std::unique_ptr<runtime::Backend>> {
        return std::make_unique<ReferenceChip>(DefaultSpec());
      },
      DeviceIdentity{}, 1);
  std::vector<uint8_t> out;
  ASSERT_TRUE(engine.Boot(&out).ok());
  wire::Request hello;
  hello.mutable_hello()->set_protocol_version(wire::ProtocolVersion(7));
  std::vector<uint8_t> in;
  EncodeFrame(Frame{FrameType::kRequest, 5, 0, hello.SerializeAsString()}, &in);
  in.insert(in.end(), {0x13, 0x37, 0x00, 0x01, 0x00});
  out.clear();
  engine.OnBytes(in, &out);
  FrameDecoder decoder;
  std::vector<Frame> frames;
  decoder.Feed(out, [&](absl::StatusOr<Frame> f) {
    ASSERT_TRUE(f.ok());
    frames.push_back(*f);
  });
  // The refusal only: a refused handshake opens no session, and without one bad frames are not
  // NAKed (docs/protocol.md 3).
  ASSERT_EQ(frames.size(), 1u);
  wire::Response r;
  ASSERT_TRUE(r.ParseFromString(frames[0].payload));
  EXPECT_EQ(r.error(), wire::VERSION_MISMATCH);
  EXPECT_NE(r.error_message().find("version 7"), std::string::npos);
  EXPECT_EQ(engine.stats().bad_frames, 2u);
  // A request after the refusal, with the nonce the refusal carried, is answered NO_SESSION.
  wire::Request read;
  read.mutable_read_counters();
  in.clear();
  EncodeFrame(Frame{FrameType::kRequest, 6, frames[0].nonce, read.SerializeAsString()}, &in);
  out.clear();
  engine.OnBytes(in, &out);
  frames.clear();
  decoder.Feed(out, [&](absl::StatusOr<Frame> f) {
    ASSERT_TRUE(f.ok());
    frames.push_back(*f);
  });
  ASSERT_EQ(frames.size(), 1u);
  ASSERT_TRUE(r.ParseFromString(frames[0].payload));
  EXPECT_EQ(r.error(), wire::NO_SESSION);
}

}  // namespace
}  // namespace pim::drivers
