// Link settings from the environment: defaults, accepted values, and one clear error naming the
// variable and its value for anything else (never a silent fallback to the default).
#include "pim/drivers/device_backends.h"

#include <cstdlib>
#include <string>

#include "gtest/gtest.h"

namespace pim::drivers {
namespace {

constexpr const char* kVariables[] = {"PIM_LINK_TIMEOUT_MS", "PIM_LINK_WINDOW", "PIM_LINK_MAX_FRAME",
                                      "PIM_LINK_ON_RESET", "PIM_LINK_VERIFY"};

class LinkEnvironmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : kVariables) unsetenv(v);
  }
  void TearDown() override { SetUp(); }
};

TEST_F(LinkEnvironmentTest, DefaultsWhenUnset) {
  absl::StatusOr<DeviceBackendOptions> o = DeviceBackendOptionsFromEnvironment("tcp");
  ASSERT_TRUE(o.ok()) << o.status();
  const DeviceBackendOptions defaults;
  EXPECT_EQ(o->backend, "tcp");
  EXPECT_EQ(o->link.timeout, absl::Milliseconds(2000));
  EXPECT_EQ(o->link.window, defaults.link.window);
  EXPECT_EQ(o->link.max_frame_bytes, defaults.link.max_frame_bytes);
  EXPECT_EQ(o->reload_on_reset, defaults.reload_on_reset);
  EXPECT_FALSE(o->verify_writes);
}

TEST_F(LinkEnvironmentTest, ReadsEverySetting) {
  setenv("PIM_LINK_TIMEOUT_MS", "750", 1);
  setenv("PIM_LINK_WINDOW", "3", 1);
  setenv("PIM_LINK_MAX_FRAME", "4096", 1);
  setenv("PIM_LINK_ON_RESET", "fail", 1);
  setenv("PIM_LINK_VERIFY", "1", 1);
  absl::StatusOr<DeviceBackendOptions> o = DeviceBackendOptionsFromEnvironment("serial");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->link.timeout, absl::Milliseconds(750));
  EXPECT_EQ(o->link.window, 3u);
  EXPECT_EQ(o->link.max_frame_bytes, 4096u);
  EXPECT_FALSE(o->reload_on_reset);
  EXPECT_TRUE(o->verify_writes);

  setenv("PIM_LINK_VERIFY", "0", 1);
  setenv("PIM_LINK_ON_RESET", "reload", 1);
  o = DeviceBackendOptionsFromEnvironment("serial");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_FALSE(o->verify_writes);
  EXPECT_TRUE(o->reload_on_reset);
}

TEST_F(LinkEnvironmentTest, RejectsBadValuesNamingTheVariable) {
  const struct {
    const char* variable;
    const char* value;
  } bad[] = {{"PIM_LINK_TIMEOUT_MS", "soon"}, {"PIM_LINK_TIMEOUT_MS", "5"},   {"PIM_LINK_WINDOW", "0"},
             {"PIM_LINK_WINDOW", "8x"},       {"PIM_LINK_MAX_FRAME", "1"},    {"PIM_LINK_ON_RESET", "retry"},
             {"PIM_LINK_VERIFY", "yes"},      {"PIM_LINK_VERIFY", "true"}};
  for (const auto& b : bad) {
    SetUp();
    setenv(b.variable, b.value, 1);
    absl::StatusOr<DeviceBackendOptions> o = DeviceBackendOptionsFromEnvironment("usb");
    ASSERT_FALSE(o.ok()) << b.variable << "=" << b.value;
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
    const std::string message(o.status().message());
    EXPECT_NE(message.find(b.variable), std::string::npos) << message;
    EXPECT_NE(message.find(std::string("'") + b.value + "'"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace pim::drivers
