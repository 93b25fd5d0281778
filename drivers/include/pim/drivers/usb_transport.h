#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pim/drivers/transport.h"

namespace pim::drivers {

// The prototype board's USB identity: pid.codes' open-source vendor id with its test product
// id. A board that ships must register its own PID; drivers/udev/99-pim.rules names this one.
constexpr uint16_t kPimUsbVendorId = 0x1209;
constexpr uint16_t kPimUsbProductId = 0x0001;
constexpr uint8_t kPimUsbOutEndpoint = 0x01;  // bulk OUT
constexpr uint8_t kPimUsbInEndpoint = 0x81;   // bulk IN

// Which attached device to open: the index-th (0-based) device with these ids, or the one with
// this serial number when it is not empty.
struct UsbDeviceFilter {
  uint16_t vendor_id = kPimUsbVendorId;
  uint16_t product_id = kPimUsbProductId;
  std::string serial_number;
  int index = 0;
};

// The chip on USB through libusb-1.0: the vendor-specific interface 0 with bulk OUT 0x01 and
// bulk IN 0x81. One event thread runs libusb's event loop; reads are served from IN transfers
// that are always pending, writes are asynchronous OUT transfers waited for with a timeout
// (cancelled and drained when it expires). A write whose length is a multiple of the endpoint's
// packet size ends with a zero-length packet; zero-length IN completions are accepted. Hotplug
// (where libusb supports it) and NO_DEVICE completions turn into Unavailable ("unplugged").
// Teardown cancels every transfer, waits for all callbacks, stops the thread, then releases
// the interface and closes. libusb stays inside the implementation. Not thread-safe (one
// caller), but its callbacks run on the event thread.
class UsbTransport : public Transport {
 public:
  static absl::StatusOr<std::unique_ptr<UsbTransport>> Open(const UsbDeviceFilter& filter);
  ~UsbTransport() override;

  absl::Status Write(absl::Span<const uint8_t> bytes, absl::Duration timeout) override;
  absl::StatusOr<size_t> Read(absl::Span<uint8_t> buffer, absl::Duration timeout) override;
  const std::string& name() const override { return name_; }

 private:
  struct Impl;
  UsbTransport(std::string name, std::unique_ptr<Impl> impl);
  std::string name_;
  std::unique_ptr<Impl> impl_;
};

// Attached boards as "usb:<vid>:<pid>[:<serial>]" URIs (serial read when the device opens).
absl::StatusOr<std::vector<std::string>> ListUsbDevices();

}  // namespace pim::drivers
