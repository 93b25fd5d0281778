// pimcal over USB (issue 6): the ADC sweep and the BN re-estimation that `pimcal adc` and
// `pimcal bn` run (calibration::CalibrateAdc, CalibrateBatchNorm, CalibrationToProto), through
// libusb against the emulated board under umockdev, give the same measurement byte for byte
// as `--device sim` with the same profile and seed. In process, as the rest of this binary:
// the board lives in this process (a child pimcal would not see it). Linked into
// pim_hil_usb_test, whose main() re-executes under the umockdev preload.

#include <string>

#include "fake_usb_board.h"
#include "gtest/gtest.h"
#include "pim/backends/register_all_backends.h"
#include "pim/calibration/adc_calibration.h"
#include "pim/calibration/bn_calibration.h"
#include "pim/calibration/calibration_file.h"
#include "pim/drivers/device_engine.h"
#include "pim/runtime/backend_registry.h"
#include "pim/sim/sim_backend.h"
#include "testing/test_programs.h"

namespace pim {
namespace {

constexpr char kSerial[] = "PIM-USB-CAL";
constexpr char kSimUri[] = "sim:profile=typical,seed=7";

// pimcal adc --macros 0 --adc-bits 3 --repeats 4 --step-settings 1 (as pimcal_hil_test.cc).
calibration::AdcCalibrationOptions ReducedSweep() {
  calibration::AdcCalibrationOptions o;
  o.macros = {0};
  o.adc_bits = {3};
  o.repeats = 4;
  o.step_settings = 1;
  return o;
}

std::string Measurement(proto::Calibration cal) {
  cal.clear_device();
  cal.clear_device_serial();
  cal.clear_firmware_version();
  return cal.SerializeAsString();
}

absl::StatusOr<proto::Calibration> Adc(runtime::BackendRegistry& registry, const std::string& uri) {
  auto device = registry.Open(uri);
  if (!device.ok()) return device.status();
  auto cal = calibration::CalibrateAdc(**device, ReducedSweep(), uri);
  if (!cal.ok()) return cal.status();
  return calibration::CalibrationToProto(*cal);
}

absl::StatusOr<proto::Program> Bn(runtime::BackendRegistry& registry, const std::string& uri) {
  auto device = registry.Open(uri);
  if (!device.ok()) return device.status();
  runtime::Tensor x({32, 1, 6, 6});
  for (size_t i = 0; i < x.data.size(); ++i) x.data[i] = double(float(double((i * 7919 + 5) % 256) / 255.0));
  calibration::BnCalibrationOptions o;
  o.batch_size = 8;
  o.device = uri;
  auto cal = calibration::CalibrateBatchNorm(runtime::testing::SmallCnn(proto::NATIVE), device->get(),
                                             {{"input", x}}, o);
  if (!cal.ok()) return cal.status();
  proto::Program p = cal->program;
  EXPECT_EQ(p.bn_calibration().device_serial(), (*device)->info().serial_number);
  p.mutable_bn_calibration()->clear_device();
  p.mutable_bn_calibration()->clear_device_serial();
  return p;
}

TEST(UsbPimcalHil, AdcCalibrationOverUsbIsTheSimulatorsByteForByte) {
  hil::FakeUsbBoard board(hil::TypicalSimDevice(kSerial), kSerial);
  runtime::BackendRegistry registry;
  ASSERT_TRUE(backends::RegisterAllBackends(registry).ok());
  absl::StatusOr<proto::Calibration> usb = Adc(registry, "usb0");
  ASSERT_TRUE(usb.ok()) << usb.status();
  absl::StatusOr<proto::Calibration> sim = Adc(registry, kSimUri);
  ASSERT_TRUE(sim.ok()) << sim.status();
  ASSERT_GT(sim->columns_size(), 200);
  EXPECT_EQ(usb->device_serial(), kSerial);
  EXPECT_TRUE(Measurement(*usb) == Measurement(*sim)) << "calibration over usb differs from sim";
  absl::StatusOr<proto::Calibration> other = Adc(registry, "sim:profile=typical,seed=8");
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_FALSE(Measurement(*other) == Measurement(*sim)) << "the seed should matter";
}

TEST(UsbPimcalHil, BnCalibrationOverUsbGivesTheSimulatorsProgram) {
  hil::FakeUsbBoard board(hil::TypicalSimDevice(kSerial), kSerial);
  runtime::BackendRegistry registry;
  ASSERT_TRUE(backends::RegisterAllBackends(registry).ok());
  absl::StatusOr<proto::Program> usb = Bn(registry, "usb0");
  ASSERT_TRUE(usb.ok()) << usb.status();
  absl::StatusOr<proto::Program> sim = Bn(registry, kSimUri);
  ASSERT_TRUE(sim.ok()) << sim.status();
  ASSERT_GT(sim->bn_calibration().layers_size(), 0);
  EXPECT_TRUE(usb->SerializeAsString() == sim->SerializeAsString()) << "BN Program over usb differs from sim";
}

}  // namespace
}  // namespace pim
