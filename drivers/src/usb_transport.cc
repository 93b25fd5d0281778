#include "pim/drivers/usb_transport.h"

#include <libusb.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace pim::drivers {
namespace {

constexpr int kInTransfers = 2;
constexpr int kInTransferBytes = 16384;

std::string UsbError(int code) { return absl::StrCat(libusb_error_name(code), " (", code, ")"); }

std::string Uri(uint16_t vid, uint16_t pid, const std::string& serial) {
  std::string uri = absl::StrFormat("usb:%04x:%04x", vid, pid);
  if (!serial.empty()) absl::StrAppend(&uri, ":", serial);
  return uri;
}

std::string SerialOf(libusb_device_handle* h, const libusb_device_descriptor& d) {
  if (d.iSerialNumber == 0) return "";
  unsigned char text[128] = {};
  const int n = libusb_get_string_descriptor_ascii(h, d.iSerialNumber, text, sizeof(text) - 1);
  return n > 0 ? std::string(reinterpret_cast<char*>(text), size_t(n)) : "";
}

}  // namespace

struct UsbTransport::Impl {
  libusb_context* ctx = nullptr;
  libusb_device_handle* handle = nullptr;
  libusb_device* device = nullptr;
  bool claimed = false;
  int out_packet = 64;
  libusb_hotplug_callback_handle hotplug = 0;
  bool have_hotplug = false;
  std::string name;

  std::thread events;
  std::atomic<bool> stop_events{false};

  std::mutex mu;
  std::condition_variable cv;
  std::deque<uint8_t> rx;
  absl::Status error;  // sticky: the device is gone or broke
  bool stopping = false;
  int in_flight = 0;   // transfers submitted and not yet called back
  std::vector<libusb_transfer*> in;

  struct OutState {
    bool done = false;
    libusb_transfer_status status = LIBUSB_TRANSFER_COMPLETED;
    int actual = 0;
  };

  static void LIBUSB_CALL OnIn(libusb_transfer* t) {
    auto* self = static_cast<Impl*>(t->user_data);
    std::lock_guard<std::mutex> lock(self->mu);

    --self->in_flight;
    switch (t->status) {
      case LIBUSB_TRANSFER_COMPLETED:
        // A zero-length completion (ZLP) carries no bytes and is not an error.
        self->rx.insert(self->rx.end(), t->buffer, t->buffer + t->actual_length);
        break;
      case LIBUSB_TRANSFER_CANCELLED:
        break;
      case LIBUSB_TRANSFER_NO_DEVICE:
        if (self->error.ok()) self->error = absl::UnavailableError(absl::StrCat(self->name, ": device unplugged"));
        break;
      default:
        if (self->error.ok()) {
          self->error = absl::UnavailableError(
              absl::StrCat(self->name, ": bulk IN 0x81 failed with transfer status ", int(t->status)));
        }
        break;
    }
    if (!self->stopping && self->error.ok() && t->status != LIBUSB_TRANSFER_CANCELLED) {
      const int r = libusb_submit_transfer(t);
      if (r == 0) {
        ++self->in_flight;
      } else if (self->error.ok()) {
        self->error = absl::UnavailableError(r == LIBUSB_ERROR_NO_DEVICE
                                                 ? absl::StrCat(self->name, ": device unplugged")
                                                 : absl::StrCat(self->name, ": resubmitting bulk IN: ", UsbError(r)));
      }
    }
    self->cv.notify_all();
  }

  static void LIBUSB_CALL OnOut(libusb_transfer* t) {
    auto* state = static_cast<std::pair<Impl*, OutState*>*>(t->user_data);
    std::lock_guard<std::mutex> lock(state->first->mu);
    --state->first->in_flight;
    state->second->done = true;
    state->second->status = t->status;
    state->second->actual = t->actual_length;
    state->first->cv.notify_all();
  }

  static int LIBUSB_CALL OnHotplug(libusb_context*, libusb_device* dev, libusb_hotplug_event, void* user) {
    auto* self = static_cast<Impl*>(user);
    std::lock_guard<std::mutex> lock(self->mu);
    if (dev == self->device && self->error.ok()) {
      self->error = absl::UnavailableError(absl::StrCat(self->name, ": device unplugged"));
      self->cv.notify_all();
    }
    return 0;
  }

  ~Impl() {
    {
      std::unique_lock<std::mutex> lock(mu);
      stopping = true;
      for (libusb_transfer* t : in) libusb_cancel_transfer(t);
      // The event thread delivers the cancellations; wait for every callback before freeing.
      cv.wait_for(lock, std::chrono::seconds(2), [&] { return in_flight == 0; });

    }
    if (have_hotplug) libusb_hotplug_deregister_callback(ctx, hotplug);
    stop_events = true;
    if (events.joinable()) {
      if (ctx) libusb_interrupt_event_handler(ctx);
      events.join();
    }
    if (in_flight == 0) {
      for (libusb_transfer* t : in) {
        delete[] t->buffer;
        libusb_free_transfer(t);
      }
    }  // else: a callback never came (libusb bug); leaking beats a use-after-free
    if (claimed) libusb_release_interface(handle, 0);
    if (handle) libusb_close(handle);
    if (ctx) libusb_exit(ctx);
  }
};

UsbTransport::UsbTransport(std::string name, std::unique_ptr<Impl> impl)
    : name_(std::move(name)), impl_(std::move(impl)) {}

UsbTransport::~UsbTransport() = default;

absl::StatusOr<std::unique_ptr<UsbTransport>> UsbTransport::Open(const UsbDeviceFilter& filter) {
  auto impl = std::make_unique<Impl>();
  std::string name = Uri(filter.vendor_id, filter.product_id, filter.serial_number);
  if (filter.serial_number.empty() && filter.index > 0) absl::StrAppend(&name, " #", filter.index);
  impl->name = name;
  if (int r = libusb_init(&impl->ctx); r != 0) {
    impl->ctx = nullptr;
    return absl::UnavailableError(absl::StrCat(name, ": libusb_init: ", UsbError(r)));
  }
  libusb_device** list = nullptr;
  const ssize_t count = libusb_get_device_list(impl->ctx, &list);
  if (count < 0) return absl::UnavailableError(absl::StrCat(name, ": listing USB devices: ", UsbError(int(count))));
  int seen = 0;
  for (ssize_t i = 0; i < count && impl->handle == nullptr; ++i) {
    libusb_device_descriptor d{};
    if (libusb_get_device_descriptor(list[i], &d) != 0) continue;
    if (d.idVendor != filter.vendor_id || d.idProduct != filter.product_id) continue;
    libusb_device_handle* h = nullptr;
    if (libusb_open(list[i], &h) != 0) continue;
    const bool match = filter.serial_number.empty() ? seen++ == filter.index
                                                     : SerialOf(h, d) == filter.serial_number;
    if (match) {
      impl->handle = h;
      impl->device = list[i];
    } else {
      libusb_close(h);
    }
  }
  libusb_free_device_list(list, 1);
  if (impl->handle == nullptr) {
    return absl::NotFoundError(absl::StrCat(name, ": no such USB device attached (", seen,
                                            " with these ids); see --list-devices and drivers/udev/99-pim.rules"));
  }
  if (int r = libusb_claim_interface(impl->handle, 0); r != 0) {
    return absl::UnavailableError(absl::StrCat(name, ": claiming interface 0: ", UsbError(r)));
  }
  impl->claimed = true;
  const int packet = libusb_get_max_packet_size(impl->device, kPimUsbOutEndpoint);
  if (packet > 0) impl->out_packet = packet;
  if (libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG)) {
    const int r = libusb_hotplug_register_callback(
        impl->ctx, LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT, LIBUSB_HOTPLUG_NO_FLAGS, filter.vendor_id, filter.product_id,
        LIBUSB_HOTPLUG_MATCH_ANY, &Impl::OnHotplug, impl.get(), &impl->hotplug);
    impl->have_hotplug = r == 0;
  }
  Impl* raw = impl.get();
  impl->events = std::thread([raw] {
    while (!raw->stop_events) {
      timeval tv{0, 100000};
      libusb_handle_events_timeout_completed(raw->ctx, &tv, nullptr);
    }
  });
  {
    std::lock_guard<std::mutex> lock(impl->mu);
    for (int i = 0; i < kInTransfers; ++i) {
      libusb_transfer* t = libusb_alloc_transfer(0);
      libusb_fill_bulk_transfer(t, impl->handle, kPimUsbInEndpoint, new unsigned char[kInTransferBytes],
                                kInTransferBytes, &Impl::OnIn, raw, 0);
      impl->in.push_back(t);
      if (int r = libusb_submit_transfer(t); r != 0) {
        return absl::UnavailableError(absl::StrCat(name, ": submitting bulk IN 0x81: ", UsbError(r)));
      }
      ++impl->in_flight;
    }
  }
  return std::unique_ptr<UsbTransport>(new UsbTransport(name, std::move(impl)));
}

absl::Status UsbTransport::Write(absl::Span<const uint8_t> bytes, absl::Duration timeout) {
  Impl& m = *impl_;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    if (!m.error.ok()) return m.error;
  }
  std::vector<unsigned char> copy(bytes.begin(), bytes.end());
  Impl::OutState state;
  std::pair<Impl*, Impl::OutState*> user{&m, &state};
  libusb_transfer* t = libusb_alloc_transfer(0);
  libusb_fill_bulk_transfer(t, m.handle, kPimUsbOutEndpoint, copy.data(), int(copy.size()), &Impl::OnOut, &user, 0);
  // The device learns where a transfer ends from a short packet; a transfer that is a whole
  // number of packets needs a zero-length one after it.
  if (!copy.empty() && copy.size() % size_t(m.out_packet) == 0) t->flags |= LIBUSB_TRANSFER_ADD_ZERO_PACKET;
  std::unique_lock<std::mutex> lock(m.mu);
  if (int r = libusb_submit_transfer(t); r != 0) {
    libusb_free_transfer(t);
    if (r == LIBUSB_ERROR_NO_DEVICE) {
      m.error = absl::UnavailableError(absl::StrCat(name_, ": device unplugged"));
      return m.error;
    }
    return absl::UnavailableError(absl::StrCat(name_, ": submitting bulk OUT 0x01: ", UsbError(r)));
  }
  ++m.in_flight;
  m.cv.wait_for(lock, absl::ToChronoNanoseconds(timeout), [&] { return state.done || !m.error.ok(); });
  const bool timed_out = !state.done;
  if (!state.done) {
    libusb_cancel_transfer(t);
    // `copy`, `state` and `user` live in this frame: wait for the callback before leaving.
    m.cv.wait_for(lock, std::chrono::seconds(5), [&] { return state.done; });
    if (!state.done) {
      return absl::InternalError(absl::StrCat(name_, ": bulk OUT never completed after cancel"));  // leak t
    }
  }
  libusb_free_transfer(t);
  if (!m.error.ok()) return m.error;
  if (timed_out) {
    return absl::DeadlineExceededError(absl::StrCat(name_, ": writing ", bytes.size(), " bytes took longer than ",
                                                    absl::FormatDuration(timeout)));
  }
  if (state.status == LIBUSB_TRANSFER_NO_DEVICE) {
    m.error = absl::UnavailableError(absl::StrCat(name_, ": device unplugged"));
    return m.error;
  }
  if (state.status != LIBUSB_TRANSFER_COMPLETED || state.actual != int(bytes.size())) {
    return absl::UnavailableError(absl::StrCat(name_, ": bulk OUT 0x01: status ", int(state.status), ", ",
                                               state.actual, " of ", bytes.size(), " bytes"));
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> UsbTransport::Read(absl::Span<uint8_t> buffer, absl::Duration timeout) {
  Impl& m = *impl_;
  std::unique_lock<std::mutex> lock(m.mu);
  m.cv.wait_for(lock, absl::ToChronoNanoseconds(timeout), [&] { return !m.rx.empty() || !m.error.ok(); });
  if (m.rx.empty()) {
    if (!m.error.ok()) return m.error;
    return size_t{0};
  }
  const size_t n = std::min(buffer.size(), m.rx.size());
  std::copy_n(m.rx.begin(), n, buffer.begin());
  m.rx.erase(m.rx.begin(), m.rx.begin() + ptrdiff_t(n));
  return n;
}

absl::StatusOr<std::vector<std::string>> ListUsbDevices() {
  libusb_context* ctx = nullptr;
  if (int r = libusb_init(&ctx); r != 0) return absl::UnavailableError(absl::StrCat("usb: libusb_init: ", UsbError(r)));
  libusb_device** list = nullptr;
  const ssize_t count = libusb_get_device_list(ctx, &list);
  std::vector<std::string> uris;
  for (ssize_t i = 0; i < count; ++i) {
    libusb_device_descriptor d{};
    if (libusb_get_device_descriptor(list[i], &d) != 0) continue;
    if (d.idVendor != kPimUsbVendorId || d.idProduct != kPimUsbProductId) continue;
    std::string serial;
    libusb_device_handle* h = nullptr;
    if (libusb_open(list[i], &h) == 0) {
      serial = SerialOf(h, d);
      libusb_close(h);
    }
    uris.push_back(Uri(d.idVendor, d.idProduct, serial));
  }
  if (count >= 0) libusb_free_device_list(list, 1);
  libusb_exit(ctx);
  if (count < 0) return absl::UnavailableError(absl::StrCat("usb: listing devices: ", UsbError(int(count))));
  return uris;
}

}  // namespace pim::drivers
