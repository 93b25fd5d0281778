#include "pim/runtime/device_uri.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pim/runtime/backend_registry.h"

namespace pim::runtime {
namespace {

using ::testing::HasSubstr;

std::string Error(const std::string& uri) {
  absl::StatusOr<DeviceUri> d = ParseDeviceUri(uri);
  EXPECT_FALSE(d.ok()) << uri;
  return d.ok() ? "" : std::string(d.status().message());
}

TEST(DeviceUri, Sim) {
  absl::StatusOr<DeviceUri> d = ParseDeviceUri("sim");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->scheme, "sim");
  EXPECT_TRUE(d->profile_path.empty());
  d = ParseDeviceUri("sim:profile=chips/noisy.textproto,seed=42");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->profile_path, "chips/noisy.textproto");
  EXPECT_EQ(d->seed, 42u);
}

TEST(DeviceUri, SimErrorsNameThePart) {
  EXPECT_THAT(Error("sim:seed=abc"), HasSubstr("sim seed 'abc' is not a non-negative integer"));
  EXPECT_THAT(Error("sim:color=red"), HasSubstr("unknown sim option 'color'"));
  EXPECT_THAT(Error("sim:profile"), HasSubstr("sim option 'profile' is not key=value"));
  EXPECT_THAT(Error("sim:seed=1,seed=2"), HasSubstr("sim option 'seed' given twice"));
  EXPECT_THAT(Error("sim:profile=a,profile=b"), HasSubstr("sim option 'profile' given twice"));
}

TEST(DeviceUri, Usb) {
  absl::StatusOr<DeviceUri> d = ParseDeviceUri("usb0");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->scheme, "usb");
  EXPECT_EQ(d->usb_index, 0);
  d = ParseDeviceUri("usb:1d50:0x6018:ABC123");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->vendor_id, 0x1d50);
  EXPECT_EQ(d->product_id, 0x6018);
  EXPECT_EQ(d->usb_serial, "ABC123");
  EXPECT_THAT(Error("usb:12345:1"), HasSubstr("vendor id '12345' is not 1..4 hex digits"));
  EXPECT_THAT(Error("usb:1d50:zz"), HasSubstr("product id 'zz'"));
  EXPECT_THAT(Error("usbx"), HasSubstr("USB index 'x'"));
}

TEST(DeviceUri, Serial) {
  absl::StatusOr<DeviceUri> d = ParseDeviceUri("serial:/dev/ttyACM0@921600");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->serial_path, "/dev/ttyACM0");
  EXPECT_EQ(d->baud, 921600u);
  d = ParseDeviceUri("serial:/dev/pts/3");
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->baud.has_value());
  EXPECT_THAT(Error("serial:/dev/ttyS0@fast"), HasSubstr("baud rate 'fast'"));
  EXPECT_THAT(Error("serial:"), HasSubstr("empty serial device path"));
}

TEST(DeviceUri, Tcp) {
  absl::StatusOr<DeviceUri> d = ParseDeviceUri("tcp://localhost:5555");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->host, "localhost");
  EXPECT_EQ(d->port, 5555);
  d = ParseDeviceUri("tcp://[::1]:80");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->host, "::1");
  EXPECT_THAT(Error("tcp://host:70000"), HasSubstr("port '70000' is not in 1..65535"));
  EXPECT_THAT(Error("tcp://host"), HasSubstr("missing ':<port>'"));
  EXPECT_THAT(Error("tcp://:80"), HasSubstr("empty host"));
}

TEST(DeviceUri, UnknownKind) {
  EXPECT_THAT(Error("pcie:0"), HasSubstr("unknown device kind 'pcie'"));
  EXPECT_THAT(Error(""), HasSubstr("empty device URI"));
}

TEST(BackendRegistry, OpensRegisteredSchemeAndRefusesOthers) {
  BackendRegistry registry;
  std::string seen;
  ASSERT_TRUE(registry
                  .Register("tcp",
                            [&](const DeviceUri& uri, const OpenOptions&) -> absl::StatusOr<std::unique_ptr<Backend>> {
                              seen = uri.host;
                              return absl::UnavailableError("no server");
                            })
                  .ok());
  EXPECT_EQ(registry.Register("tcp", [](const DeviceUri&, const OpenOptions&) -> absl::StatusOr<std::unique_ptr<Backend>> {
                      return absl::UnavailableError("x");
                    }).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(registry.Open("tcp://board:1").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(seen, "board");
  absl::StatusOr<std::unique_ptr<Backend>> usb = registry.Open("usb0");
  EXPECT_EQ(usb.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(usb.status().message()), HasSubstr("no 'usb' backend (available: tcp)"));
  EXPECT_EQ(registry.Open("tcp://x").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace pim::runtime
