// The USB path for real: libusb (UsbTransport) against an emulated board under umockdev, which
// fakes usbdevfs in this process (see fake_usb_board.h). Whole models give logits identical to
// `--device sim`; with damaged frames too; an unplugged board gives a clear error, not a hang.
// Its own binary: the umockdev preload hides the real /sys from the whole process.

#include <stdlib.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>

#include "fake_usb_board.h"
#include "gtest/gtest.h"
#include "pim/backends/register_all_backends.h"
#include "pim/drivers/device_backend.h"
#include "pim/drivers/device_engine.h"
#include "pim/drivers/usb_transport.h"
#include "pim/runtime/backend_registry.h"
#include "pim/runtime/executor.h"
#include "pim/sim/sim_backend.h"
#include "testing/test_programs.h"

namespace pim {
namespace {

constexpr char kSerial[] = "PIM-USB-0042";

std::unique_ptr<emu::VirtualDevice> Board(const std::string& faults) {
  emu::VirtualDeviceOptions o;
  o.fault_seed = 3;
  o.to_device = *drivers::ParseFaultRates(faults);
  o.from_device = *drivers::ParseFaultRates(faults);
  return hil::TypicalSimDevice(kSerial, o);
}

runtime::Tensor Images(int64_t n, int64_t h, int64_t w, int salt) {
  runtime::Tensor x({n, 1, h, w});
  for (size_t i = 0; i < x.data.size(); ++i) x.data[i] = double(float(double((i * 7919 + salt) % 256) / 255.0));
  return x;
}

absl::StatusOr<runtime::Tensor> Logits(const proto::Program& p, const runtime::Tensor& x, runtime::Backend* b) {
  runtime::ExecutorOptions options;
  options.batch_size = 16;
  auto ex = runtime::Executor::Create(p, b, options);
  if (!ex.ok()) return ex.status();
  auto r = (*ex)->Run({{"input", x}});
  if (!r.ok()) return r.status();
  return r->outputs.at("logits");
}

runtime::Tensor SimLogits(const proto::Program& p, const runtime::Tensor& x) {
  runtime::BackendRegistry registry;
  EXPECT_TRUE(backends::RegisterAllBackends(registry).ok());
  auto sim = registry.Open("sim:profile=typical,seed=7");
  EXPECT_TRUE(sim.ok()) << sim.status();
  return *Logits(p, x, sim->get());
}

struct Case {
  proto::Program program;
  runtime::Tensor input;
};

std::vector<Case> Cases() {
  return {{runtime::testing::SmallCnn(proto::NATIVE), Images(48, 6, 6, 1)},
          {runtime::testing::SmallCnn(proto::BIT_SERIAL, 1.0), Images(48, 6, 6, 2)},
          {runtime::testing::ImageMlp(), Images(32, 28, 28, 3)}};
}

TEST(UsbHil, ListsTheBoardWithItsSerialNumber) {
  hil::FakeUsbBoard board(Board(""), kSerial);
  runtime::BackendRegistry registry;
  ASSERT_TRUE(backends::RegisterAllBackends(registry).ok());
  std::vector<std::string> devices = registry.ListDevices();
  EXPECT_NE(std::find(devices.begin(), devices.end(), std::string("usb:1209:0001:") + kSerial), devices.end())
      << ::testing::PrintToString(devices);
}

TEST(UsbHil, ModelsOverUsbGiveTheSimulatorsLogitsBitForBit) {
  hil::FakeUsbBoard board(Board(""), kSerial);
  runtime::BackendRegistry registry;
  ASSERT_TRUE(backends::RegisterAllBackends(registry).ok());
  for (const std::string& uri : {std::string("usb0"), std::string("usb:1209:0001:") + kSerial}) {
    auto device = registry.Open(uri);
    ASSERT_TRUE(device.ok()) << uri << ": " << device.status();
    EXPECT_EQ((*device)->info().backend, "usb");
    EXPECT_EQ((*device)->info().serial_number, kSerial);
    for (const Case& c : Cases()) {
      absl::StatusOr<runtime::Tensor> got = Logits(c.program, c.input, device->get());
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(got->data, SimLogits(c.program, c.input).data);
    }
  }
}

TEST(UsbHil, WholePacketWritesEndWithAZeroLengthPacketAndZeroLengthReadsAreHarmless) {
  hil::FakeUsbBoard board(Board(""), kSerial);
  auto transport = drivers::UsbTransport::Open(drivers::UsbDeviceFilter{});
  ASSERT_TRUE(transport.ok()) << transport.status();
  // 128 bytes without a delimiter: a partial frame the device just holds.
  std::vector<uint8_t> bytes(128, 0x55);
  ASSERT_TRUE((*transport)->Write(bytes, absl::Seconds(2)).ok());
  std::vector<uint8_t> odd(100, 0x55);
  ASSERT_TRUE((*transport)->Write(odd, absl::Seconds(2)).ok());
  EXPECT_EQ(board.whole_packet_writes(), 1);
  EXPECT_EQ(board.zero_packet_flags(), 1);
  // A whole model afterwards, with the board sending ZLPs after whole-packet reads.
  drivers::DeviceBackendOptions o;
  auto device = drivers::DeviceBackend::Open(std::move(*transport), o);
  ASSERT_TRUE(device.ok()) << device.status();
  const Case c = Cases()[2];
  absl::StatusOr<runtime::Tensor> got = Logits(c.program, c.input, device->get());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->data, SimLogits(c.program, c.input).data);
  std::printf("zero-length IN completions: %d, whole-packet OUT writes: %d (all with ZLP: %s)\n",
              board.zero_length_ins(), board.whole_packet_writes(),
              board.whole_packet_writes() == board.zero_packet_flags() ? "yes" : "no");
  EXPECT_EQ(board.whole_packet_writes(), board.zero_packet_flags());
}

TEST(UsbHil, WrongSerialIsNotFound) {
  hil::FakeUsbBoard board(Board(""), kSerial);
  runtime::BackendRegistry registry;
  ASSERT_TRUE(backends::RegisterAllBackends(registry).ok());
  auto device = registry.Open("usb:1209:0001:NOPE");
  EXPECT_EQ(device.status().code(), absl::StatusCode::kNotFound) << device.status();
}

TEST(UsbHil, OnePercentFaultsEachWayStillGiveIdenticalLogits) {
  hil::FakeUsbBoard board(Board("rate=0.01,kinds=drop+corrupt+duplicate+truncate+stall+reset,stall_ms=30"), kSerial);
  auto transport = drivers::UsbTransport::Open(drivers::UsbDeviceFilter{});
  ASSERT_TRUE(transport.ok()) << transport.status();
  drivers::DeviceBackendOptions o;
  o.link.max_frame_bytes = 1200;
  auto device = drivers::DeviceBackend::Open(std::move(*transport), o);
  ASSERT_TRUE(device.ok()) << device.status();
  for (const Case& c : Cases()) {
    absl::StatusOr<runtime::Tensor> got = Logits(c.program, c.input, device->get());
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->data, SimLogits(c.program, c.input).data);
  }
  const drivers::LinkStats& s = (*device)->link_stats();
  std::printf("usb: %llu requests, %llu + %llu retransmissions, %d resets repaired\n",
              (unsigned long long)s.requests, (unsigned long long)s.retransmissions,
              (unsigned long long)s.fast_retransmissions, (*device)->resets_recovered());
  EXPECT_GT(s.retransmissions + s.fast_retransmissions, 0u);
}

TEST(UsbHil, UnpluggedBoardGivesAClearErrorQuickly) {
  hil::FakeUsbBoard board(Board(""), kSerial);
  auto transport = drivers::UsbTransport::Open(drivers::UsbDeviceFilter{});
  ASSERT_TRUE(transport.ok()) << transport.status();
  drivers::DeviceBackendOptions o;
  o.link.timeout = absl::Seconds(2);
  auto device = drivers::DeviceBackend::Open(std::move(*transport), o);
  ASSERT_TRUE(device.ok()) << device.status();
  const Case c = Cases()[0];
  ASSERT_TRUE(Logits(c.program, c.input, device->get()).ok());
  board.Unplug();
  const absl::Time start = absl::Now();
  absl::StatusOr<runtime::Tensor> got = Logits(c.program, c.input, device->get());
  ASSERT_FALSE(got.ok());
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(2000 + 1500));  // timeout plus slack
  EXPECT_TRUE(got.status().code() == absl::StatusCode::kUnavailable ||
              got.status().code() == absl::StatusCode::kDeadlineExceeded)
      << got.status();
  std::printf("usb unplugged after %lld ms: %s\n", (long long)absl::ToInt64Milliseconds(absl::Now() - start),
              got.status().ToString().c_str());
  const absl::Time teardown = absl::Now();
  device->reset();  // teardown against a vanished device must not hang either
  std::printf("teardown took %lld ms\n", (long long)absl::ToInt64Milliseconds(absl::Now() - teardown));
  EXPECT_LT(absl::Now() - teardown, absl::Seconds(3));
}

TEST(UsbHil, UnplugMidRunGivesAClearErrorAndNoHang) {
  hil::FakeUsbBoard board(Board(""), kSerial);
  auto transport = drivers::UsbTransport::Open(drivers::UsbDeviceFilter{});
  ASSERT_TRUE(transport.ok()) << transport.status();
  drivers::DeviceBackendOptions o;
  o.link.timeout = absl::Seconds(2);
  o.link.max_frame_bytes = 2048;  // many transfers, so the cable goes while some are pending
  auto device = drivers::DeviceBackend::Open(std::move(*transport), o);
  ASSERT_TRUE(device.ok()) << device.status();
  const proto::Program p = runtime::testing::ImageMlp();
  const runtime::Tensor x = Images(2048, 28, 28, 5);
  std::thread puller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    board.Unplug();
  });
  const absl::Time start = absl::Now();
  absl::StatusOr<runtime::Tensor> got = Logits(p, x, device->get());
  const absl::Duration took = absl::Now() - start;
  puller.join();
  ASSERT_FALSE(got.ok()) << "the run finished before the unplug; make it longer";
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable) << got.status();
  EXPECT_NE(got.status().message().find("unplugged"), std::string::npos) << got.status();
  EXPECT_LT(took, absl::Milliseconds(150 + 2000 + 1500));
  const absl::Time teardown = absl::Now();
  device->reset();
  EXPECT_LT(absl::Now() - teardown, absl::Seconds(1));
}

}  // namespace
}  // namespace pim

int main(int argc, char** argv) {
  // umockdev's preload must be there from process start; decide by LD_PRELOAD itself (see
  // shared notes: umockdev_in_mock_environment() is false until a testbed exists).
  const char* preload = getenv("LD_PRELOAD");
  if (preload == nullptr || std::strstr(preload, "libumockdev-preload") == nullptr) {
    std::string value = "libumockdev-preload.so.0";
    if (preload != nullptr && *preload != '\0') value += std::string(":") + preload;
    setenv("LD_PRELOAD", value.c_str(), 1);
#if defined(__SANITIZE_ADDRESS__)
    // ASan wants its runtime first in the preload list; the preload is not instrumented.
    setenv("ASAN_OPTIONS", "verify_asan_link_order=0", 0);
#endif
    execv("/proc/self/exe", argv);
    std::perror("re-exec under libumockdev-preload");
    return 1;
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
