#include "fake_usb_board.h"

#include <errno.h>
#include <linux/usbdevice_fs.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "gtest/gtest.h"
#include "pim/drivers/device_engine.h"
#include "pim/drivers/usb_transport.h"
#include "pim/sim/sim_backend.h"

namespace pim::hil {
namespace {

constexpr char kSysPath[] = "/sys/devices/pim-usb1";

// Device (18 bytes): USB 2.0, class in interface, EP0 64 bytes, 1209:0001, bcdDevice 1.00,
// no manufacturer/product strings, serial string 1, one configuration. Configuration (32):
// one interface, vendor class 0xFF, bulk OUT 0x01 and bulk IN 0x81 of 64 bytes (full speed).
constexpr char kDescriptors[] =
    "12010002000000400912010000010000010109022000010100803209040000"
    "02ff000000070501024000000705810240000000";

}  // namespace

FakeUsbBoard::FakeUsbBoard(std::unique_ptr<emu::VirtualDevice> device, std::string serial)
    : serial_(std::move(serial)), device_(std::move(device)) {
  testbed_ = umockdev_testbed_new();
  handler_ = umockdev_ioctl_base_new();
  g_object_connect(handler_, "signal-after::handle-ioctl", G_CALLBACK(&FakeUsbBoard::OnIoctl), this, nullptr);
  // The handler must be in place before the device appears, or libusb may open it first.
  umockdev_testbed_attach_ioctl(testbed_, "/dev/bus/usb/001/001", handler_, nullptr);
  const std::string record = std::string(
                                 "P: /devices/pim-usb1\n"
                                 "N: bus/usb/001/001\n"
                                 "E: SUBSYSTEM=usb\n"
                                 "E: DRIVER=usb\n"
                                 "E: BUSNUM=001\n"
                                 "E: DEVNUM=001\n"
                                 "E: DEVNAME=/dev/bus/usb/001/001\n"
                                 "E: DEVTYPE=usb_device\n"
                                 "A: bConfigurationValue=1\\n\n"
                                 "A: busnum=1\\n\n"
                                 "A: devnum=1\\n\n"
                                 "A: speed=12\\n\n"
                                 "H: descriptors=") +
                             kDescriptors + "\n";
  umockdev_testbed_add_from_string(testbed_, record.c_str(), nullptr);
}

FakeUsbBoard::~FakeUsbBoard() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    unplugged_ = true;
    for (auto* q : {&in_urbs_, &done_urbs_, &discarded_}) {
      for (UMockdevIoctlData* d : *q) umockdev_ioctl_data_unref(d);
      q->clear();
    }
  }
  g_clear_object(&handler_);
  g_clear_object(&testbed_);
}

void FakeUsbBoard::Unplug() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    unplugged_ = true;
  }
  umockdev_testbed_uevent(testbed_, kSysPath, "remove");
  umockdev_testbed_remove_device(testbed_, kSysPath);
}

gboolean FakeUsbBoard::OnIoctl(UMockdevIoctlBase*, UMockdevIoctlClient* client, gpointer self) {
  return static_cast<FakeUsbBoard*>(self)->Handle(client);
}

gboolean FakeUsbBoard::Handle(UMockdevIoctlClient* client) {
  const unsigned long request = umockdev_ioctl_client_get_request(client);
  UMockdevIoctlData* arg = umockdev_ioctl_client_get_arg(client);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (unplugged_) {
      // As the kernel does after a disconnect (with USBDEVFS_CAP_REAP_AFTER_DISCONNECT): URBs
      // still pending are reaped with -ESHUTDOWN, everything else fails with ENODEV.
      if (request == USBDEVFS_REAPURB || request == USBDEVFS_REAPURBNDELAY) {
        for (auto* q : {&done_urbs_, &discarded_, &in_urbs_}) {
          if (q->empty()) continue;
          UMockdevIoctlData* urb = q->front();
          q->pop_front();
          reinterpret_cast<usbdevfs_urb*>(urb->data)->status = -ESHUTDOWN;
          reinterpret_cast<usbdevfs_urb*>(urb->data)->actual_length = 0;
          UMockdevIoctlData* ptr = umockdev_ioctl_data_resolve(arg, 0, sizeof(gpointer), nullptr);
          umockdev_ioctl_data_set_ptr(ptr, 0, urb);
          umockdev_ioctl_data_unref(ptr);
          umockdev_ioctl_data_unref(urb);
          umockdev_ioctl_client_complete(client, 0, 0);
          return TRUE;
        }
      }
      umockdev_ioctl_client_complete(client, -1, ENODEV);
      return TRUE;
    }
  }
  switch (request) {
    case USBDEVFS_GET_CAPABILITIES: {
      UMockdevIoctlData* d = umockdev_ioctl_data_resolve(arg, 0, sizeof(guint32), nullptr);
      *reinterpret_cast<guint32*>(d->data) = USBDEVFS_CAP_BULK_CONTINUATION | USBDEVFS_CAP_NO_PACKET_SIZE_LIM |
                                              USBDEVFS_CAP_REAP_AFTER_DISCONNECT | USBDEVFS_CAP_ZERO_PACKET;
      umockdev_ioctl_data_unref(d);
      umockdev_ioctl_client_complete(client, 0, 0);
      return TRUE;
    }
    case USBDEVFS_CLAIMINTERFACE:
    case USBDEVFS_RELEASEINTERFACE:
    case USBDEVFS_CLEAR_HALT:
    case USBDEVFS_RESETEP:
      umockdev_ioctl_client_complete(client, 0, 0);
      return TRUE;
    case USBDEVFS_GETDRIVER:
    case USBDEVFS_IOCTL:
      umockdev_ioctl_client_complete(client, -1, ENODATA);  // no kernel driver bound
      return TRUE;
    case USBDEVFS_DISCONNECT_CLAIM:
      umockdev_ioctl_client_complete(client, -1, EINVAL);
      return TRUE;
    case USBDEVFS_SUBMITURB:
      Submit(client, arg);
      return TRUE;
    case USBDEVFS_REAPURB:
    case USBDEVFS_REAPURBNDELAY:
      Reap(client, arg);
      return TRUE;
    case USBDEVFS_DISCARDURB:
      Discard(client, arg);
      return TRUE;
    default:
      umockdev_ioctl_client_complete(client, -1, ENOTTY);
      return TRUE;
  }
}

int FakeUsbBoard::Control(const uint8_t* setup, uint8_t* data, int room) {
  const int type = setup[0], request = setup[1];
  const int value = setup[2] | (setup[3] << 8);
  if (type != 0x80 || request != 0x06 || (value >> 8) != 0x03) return -1;  // only GET_DESCRIPTOR(STRING)
  std::vector<uint8_t> d;
  if ((value & 0xFF) == 0) {
    d = {4, 3, 0x09, 0x04};  // English (US)
  } else if ((value & 0xFF) == 1) {
    d = {uint8_t(2 + 2 * serial_.size()), 3};
    for (char c : serial_) d.insert(d.end(), {uint8_t(c), 0});
  } else {
    return -1;
  }
  const int n = std::min<int>(room, int(d.size()));
  std::memcpy(data, d.data(), size_t(n));
  return n;
}

void FakeUsbBoard::Submit(UMockdevIoctlClient* client, UMockdevIoctlData* arg) {
  UMockdevIoctlData* urb_data = umockdev_ioctl_data_resolve(arg, 0, sizeof(usbdevfs_urb), nullptr);
  auto* urb = reinterpret_cast<usbdevfs_urb*>(urb_data->data);
  // The client lives in this process: its buffer is read and written through its own pointer.
  auto* buffer = static_cast<uint8_t*>(urb->buffer);
  std::lock_guard<std::mutex> lock(mu_);
  if (urb->type == USBDEVFS_URB_TYPE_CONTROL) {
    const int n = urb->buffer_length >= 8 ? Control(buffer, buffer + 8, urb->buffer_length - 8) : -1;
    urb->status = n < 0 ? -EPIPE : 0;
    urb->actual_length = std::max(n, 0);
    done_urbs_.push_back(urb_data);
  } else if (urb->type == USBDEVFS_URB_TYPE_BULK && urb->endpoint == drivers::kPimUsbOutEndpoint) {
    if (urb->buffer_length > 0 && urb->buffer_length % 64 == 0) {
      ++whole_packet_writes_;
      if (urb->flags & USBDEVFS_URB_ZERO_PACKET) ++zero_packet_flags_;
    }
    device_->Receive(absl::MakeConstSpan(buffer, size_t(urb->buffer_length)), absl::Now());
    urb->status = 0;
    urb->actual_length = urb->buffer_length;
    done_urbs_.push_back(urb_data);
  } else if (urb->type == USBDEVFS_URB_TYPE_BULK && urb->endpoint == drivers::kPimUsbInEndpoint) {
    in_urbs_.push_back(urb_data);
  } else {
    umockdev_ioctl_data_unref(urb_data);
    umockdev_ioctl_client_complete(client, -1, EINVAL);
    return;
  }
  umockdev_ioctl_client_complete(client, 0, 0);
}

void FakeUsbBoard::Reap(UMockdevIoctlClient* client, UMockdevIoctlData* arg) {
  UMockdevIoctlData* reaped = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!discarded_.empty()) {
      reaped = discarded_.front();
      discarded_.pop_front();
      reinterpret_cast<usbdevfs_urb*>(reaped->data)->status = -ENOENT;
    } else if (!done_urbs_.empty()) {
      reaped = done_urbs_.front();
      done_urbs_.pop_front();
    } else {
      if (absl::Status s = device_->Advance(absl::Now(), &to_host_); !s.ok()) {
        umockdev_ioctl_client_complete(client, -1, EIO);
        return;
      }
      if (zlp_due_ && !in_urbs_.empty()) {
        // The short packet that ends a transfer of whole packets: a zero-length completion.
        zlp_due_ = false;
        ++zero_length_ins_;
        reaped = in_urbs_.front();
        in_urbs_.pop_front();
        auto* urb = reinterpret_cast<usbdevfs_urb*>(reaped->data);
        urb->status = 0;
        urb->actual_length = 0;
      } else if (!to_host_.empty() && !in_urbs_.empty()) {
        reaped = in_urbs_.front();
        in_urbs_.pop_front();
        auto* urb = reinterpret_cast<usbdevfs_urb*>(reaped->data);
        const size_t n = std::min(size_t(urb->buffer_length), to_host_.size());
        std::memcpy(urb->buffer, to_host_.data(), n);
        to_host_.erase(to_host_.begin(), to_host_.begin() + ptrdiff_t(n));
        urb->status = 0;
        urb->actual_length = int(n);
        zlp_due_ = n % 64 == 0;
      }
    }
  }
  if (reaped == nullptr) {
    // The fake device node always polls readable, so libusb reaps in a loop; a short pause
    // here keeps that from eating a core (docs: notes/usb-testing).
    std::this_thread::sleep_for(std::chrono::microseconds(500));
    umockdev_ioctl_client_complete(client, -1, EAGAIN);
    return;
  }
  UMockdevIoctlData* ptr = umockdev_ioctl_data_resolve(arg, 0, sizeof(gpointer), nullptr);
  umockdev_ioctl_data_set_ptr(ptr, 0, reaped);
  umockdev_ioctl_data_unref(ptr);
  umockdev_ioctl_data_unref(reaped);
  umockdev_ioctl_client_complete(client, 0, 0);
}

void FakeUsbBoard::Discard(UMockdevIoctlClient* client, UMockdevIoctlData* arg) {
  const gulong addr = reinterpret_cast<gulong>(*reinterpret_cast<void**>(arg->data));
  std::lock_guard<std::mutex> lock(mu_);
  auto it = std::find_if(in_urbs_.begin(), in_urbs_.end(), [&](UMockdevIoctlData* d) { return d->client_addr == addr; });
  if (it == in_urbs_.end()) {
    umockdev_ioctl_client_complete(client, -1, EINVAL);
    return;
  }
  discarded_.push_back(*it);
  in_urbs_.erase(it);
  umockdev_ioctl_client_complete(client, 0, 0);
}

std::unique_ptr<emu::VirtualDevice> TypicalSimDevice(const std::string& serial,
                                                     const emu::VirtualDeviceOptions& options) {
  runtime::DeviceUri uri;
  uri.scheme = "sim";
  uri.profile_path = "typical";
  uri.seed = 7;
  drivers::DeviceIdentity id;
  id.serial_number = serial;
  id.max_frame_bytes = 16384;
  id.window = 16;
  auto engine = std::make_unique<drivers::DeviceEngine>(
      [uri]() { return sim::OpenSimBackend(uri, runtime::OpenOptions{}); }, id, 7);
  auto device = std::make_unique<emu::VirtualDevice>(std::move(engine), options);
  EXPECT_TRUE(device->Boot(absl::Now()).ok());
  return device;
}

}  // namespace pim::hil
