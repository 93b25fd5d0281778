#include "pim/drivers/device_backends.h"

#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "pim/drivers/serial_transport.h"
#include "pim/drivers/tcp_transport.h"
#ifdef PIM_HAVE_LIBUSB
#include "pim/drivers/usb_transport.h"
#endif

namespace pim::drivers {
namespace {

absl::Status ReadInt(const char* var, int64_t lo, int64_t hi, int64_t* out) {
  const char* text = std::getenv(var);
  if (text == nullptr || *text == '\0') return absl::OkStatus();
  int64_t v = 0;
  if (!absl::SimpleAtoi(text, &v) || v < lo || v > hi) {
    return absl::InvalidArgumentError(
        absl::StrCat("environment ", var, "='", text, "' is not an integer in [", lo, ", ", hi, "]"));
  }
  *out = v;
  return absl::OkStatus();
}

// A two-valued setting: `on_value` sets *out to true, `off_value` to false; unset or empty keeps
// the default; anything else is an error naming the variable and its value.
absl::Status ReadSwitch(const char* var, const char* on_value, const char* off_value, bool* out) {
  const char* text = std::getenv(var);
  if (text == nullptr || *text == '\0') return absl::OkStatus();
  const std::string value = text;
  if (value != on_value && value != off_value) {
    return absl::InvalidArgumentError(
        absl::StrCat("environment ", var, "='", value, "' must be '", on_value, "' or '", off_value, "'"));
  }
  *out = value == on_value;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<runtime::Backend>> OpenOver(absl::StatusOr<std::unique_ptr<Transport>> transport,
                                                           const std::string& backend) {
  if (!transport.ok()) return transport.status();
  absl::StatusOr<DeviceBackendOptions> options = DeviceBackendOptionsFromEnvironment(backend);
  if (!options.ok()) return options.status();
  absl::StatusOr<std::unique_ptr<DeviceBackend>> device = DeviceBackend::Open(std::move(*transport), *options);
  if (!device.ok()) return device.status();
  return std::unique_ptr<runtime::Backend>(std::move(*device));
}

}  // namespace

absl::StatusOr<DeviceBackendOptions> DeviceBackendOptionsFromEnvironment(const std::string& backend) {
  DeviceBackendOptions o;
  o.backend = backend;
  int64_t timeout_ms = 2000, window = o.link.window, frame = o.link.max_frame_bytes;
  if (absl::Status s = ReadInt("PIM_LINK_TIMEOUT_MS", 10, 3600000, &timeout_ms); !s.ok()) return s;
  if (absl::Status s = ReadInt("PIM_LINK_WINDOW", 1, 1024, &window); !s.ok()) return s;
  if (absl::Status s = ReadInt("PIM_LINK_MAX_FRAME", kMinFrameBytes, kMaxFrameBytes, &frame); !s.ok()) return s;
  o.link.timeout = absl::Milliseconds(timeout_ms);
  o.link.window = uint32_t(window);
  o.link.max_frame_bytes = uint32_t(frame);
  if (absl::Status s = ReadSwitch("PIM_LINK_ON_RESET", "reload", "fail", &o.reload_on_reset); !s.ok()) return s;
  if (absl::Status s = ReadSwitch("PIM_LINK_VERIFY", "1", "0", &o.verify_writes); !s.ok()) return s;
  return o;
}

absl::Status RegisterDeviceBackends(runtime::BackendRegistry& registry) {
  absl::Status s = registry.Register("tcp", [](const runtime::DeviceUri& uri, const runtime::OpenOptions&) {
    absl::StatusOr<DeviceBackendOptions> options = DeviceBackendOptionsFromEnvironment("tcp");
    if (!options.ok()) return absl::StatusOr<std::unique_ptr<runtime::Backend>>(options.status());
    absl::StatusOr<std::unique_ptr<TcpTransport>> t = TcpTransport::Connect(uri.host, uri.port, options->link.timeout);
    if (!t.ok()) return absl::StatusOr<std::unique_ptr<runtime::Backend>>(t.status());
    return OpenOver(std::unique_ptr<Transport>(std::move(*t)), "tcp");
  });
  if (!s.ok()) return s;
  s = registry.Register(
      "serial",
      [](const runtime::DeviceUri& uri, const runtime::OpenOptions&) {
        absl::StatusOr<std::unique_ptr<SerialTransport>> t =
            SerialTransport::Open(uri.serial_path, uri.baud.value_or(kDefaultBaud));
        if (!t.ok()) return absl::StatusOr<std::unique_ptr<runtime::Backend>>(t.status());
        return OpenOver(std::unique_ptr<Transport>(std::move(*t)), "serial");
      },
      [] { return absl::StatusOr<std::vector<std::string>>(ListSerialPorts()); });
  if (!s.ok()) return s;
#ifdef PIM_HAVE_LIBUSB
  s = registry.Register(
      "usb",
      [](const runtime::DeviceUri& uri, const runtime::OpenOptions&) {
        UsbDeviceFilter filter;
        filter.index = uri.usb_index.value_or(0);
        if (uri.vendor_id) filter.vendor_id = *uri.vendor_id;
        if (uri.product_id) filter.product_id = *uri.product_id;
        filter.serial_number = uri.usb_serial;
        absl::StatusOr<std::unique_ptr<UsbTransport>> t = UsbTransport::Open(filter);
        if (!t.ok()) return absl::StatusOr<std::unique_ptr<runtime::Backend>>(t.status());
        return OpenOver(std::unique_ptr<Transport>(std::move(*t)), "usb");
      },
      [] { return ListUsbDevices(); });
#endif
  return s;
}

}  // namespace pim::drivers
