#pragma once

// A test-only USB board: umockdev fakes sysfs, udev and /dev/bus/usb/001/001, and this class
// answers the usbdevfs ioctls that libusb issues on it, serving the link protocol from an
// in-process emu::VirtualDevice (the same engine pim-emu runs). The project's real libusb code
// (UsbTransport: enumeration, claim, async bulk transfers on its event thread, hotplug, unplug
// mid-transfer) runs unchanged against it. Requires the umockdev preload library from process
// start (see usb_hil_test.cc main). One board per testbed; not copyable.

#include <umockdev.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "virtual_device.h"

namespace pim::hil {

class FakeUsbBoard {
 public:
  FakeUsbBoard(std::unique_ptr<emu::VirtualDevice> device, std::string serial);
  ~FakeUsbBoard();
  FakeUsbBoard(const FakeUsbBoard&) = delete;
  FakeUsbBoard& operator=(const FakeUsbBoard&) = delete;

  // Pulls the cable: every later ioctl fails with ENODEV and udev sees a "remove".
  void Unplug();

  const emu::VirtualDevice& device() const { return *device_; }

 private:
  static gboolean OnIoctl(UMockdevIoctlBase* handler, UMockdevIoctlClient* client, gpointer self);
  gboolean Handle(UMockdevIoctlClient* client);
  void Submit(UMockdevIoctlClient* client, UMockdevIoctlData* arg);
  void Reap(UMockdevIoctlClient* client, UMockdevIoctlData* arg);
  void Discard(UMockdevIoctlClient* client, UMockdevIoctlData* arg);
  // Answers a control transfer (string descriptors only); returns the data length or -1 to stall.
  int Control(const uint8_t* setup, uint8_t* data, int room);

  UMockdevTestbed* testbed_ = nullptr;
  UMockdevIoctlBase* handler_ = nullptr;
  std::string serial_;
  std::mutex mu_;
  std::unique_ptr<emu::VirtualDevice> device_;
  std::deque<UMockdevIoctlData*> in_urbs_;    // submitted bulk IN, waiting for data
  std::deque<UMockdevIoctlData*> done_urbs_;  // completed, waiting to be reaped
  std::deque<UMockdevIoctlData*> discarded_;
  std::vector<uint8_t> to_host_;
  bool unplugged_ = false;
};

}  // namespace pim::hil
