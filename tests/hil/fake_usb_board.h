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

  // Bulk OUT URBs whose length is a whole number of 64-byte packets, and how many of them
  // asked for a zero-length packet after them (they all must).
  int whole_packet_writes() {
    std::lock_guard<std::mutex> lock(mu_);
    return whole_packet_writes_;
  }
  int zero_packet_flags() {
    std::lock_guard<std::mutex> lock(mu_);
    return zero_packet_flags_;
  }
  // Bulk IN completions of zero length the board sent (after each whole-packet IN transfer,
  // as a device that ends transfers with short packets does).
  int zero_length_ins() {
    std::lock_guard<std::mutex> lock(mu_);
    return zero_length_ins_;
  }

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
  bool zlp_due_ = false;
  int whole_packet_writes_ = 0;
  int zero_packet_flags_ = 0;
  int zero_length_ins_ = 0;
};

// The virtual chip the USB tests plug in: pim-emu's engine over the simulator with the
// 'typical' profile, seed 7 (URI sim:profile=typical,seed=7), 16 KiB frames, window 16, booted.
std::unique_ptr<emu::VirtualDevice> TypicalSimDevice(const std::string& serial,
                                                     const emu::VirtualDeviceOptions& options = {});

}  // namespace pim::hil
