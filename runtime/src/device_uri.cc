#include "pim/runtime/device_uri.h"

#include <cctype>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace pim::runtime {
namespace {

absl::Status Bad(const std::string& text, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("device '", text, "': ", what));
}

bool AllDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::optional<uint16_t> ParseHex16(absl::string_view s) {
  if (absl::StartsWithIgnoreCase(s, "0x")) s.remove_prefix(2);
  if (s.empty() || s.size() > 4) return std::nullopt;
  uint32_t v = 0;
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
    v = v * 16 + uint32_t(std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : std::tolower(c) - 'a' + 10);
  }
  return uint16_t(v);
}

absl::StatusOr<DeviceUri> ParseSim(DeviceUri uri, absl::string_view options) {
  if (options.empty()) return Bad(uri.text, "'sim:' needs options (profile=<file>, seed=<N>)");
  for (absl::string_view option : absl::StrSplit(options, ',')) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(option, absl::MaxSplits('=', 1));
    if (option.find('=') == absl::string_view::npos) {
      return Bad(uri.text, absl::StrCat("sim option '", option, "' is not key=value"));
    }
    if ((kv.first == "profile" && !uri.profile_path.empty()) || (kv.first == "seed" && uri.seed)) {
      return Bad(uri.text, absl::StrCat("sim option '", kv.first, "' given twice"));
    }
    if (kv.first == "profile") {
      if (kv.second.empty()) return Bad(uri.text, "sim option 'profile' has an empty file name");
      uri.profile_path = std::string(kv.second);
    } else if (kv.first == "seed") {
      uint64_t seed = 0;
      if (!AllDigits(kv.second) || !absl::SimpleAtoi(kv.second, &seed)) {
        return Bad(uri.text, absl::StrCat("sim seed '", kv.second, "' is not a non-negative integer"));
      }
      uri.seed = seed;
    } else {
      return Bad(uri.text, absl::StrCat("unknown sim option '", kv.first, "' (known: profile, seed)"));
    }
  }
  return uri;
}

}  // namespace

absl::StatusOr<DeviceUri> ParseDeviceUri(const std::string& text) {
  DeviceUri uri;
  uri.text = text;
  if (text.empty()) return Bad(text, "empty device URI");
  absl::string_view t = text;
  if (t == "sim") {
    uri.scheme = "sim";
    return uri;
  }
  if (absl::ConsumePrefix(&t, "sim:")) {
    uri.scheme = "sim";
    return ParseSim(std::move(uri), t);
  }
  if (absl::ConsumePrefix(&t, "tcp://")) {
    uri.scheme = "tcp";
    size_t colon;
    if (absl::StartsWith(t, "[")) {
      const size_t close = t.find(']');
      if (close == absl::string_view::npos) return Bad(text, "IPv6 host has no closing ']'");
      uri.host = std::string(t.substr(1, close - 1));
      if (close + 1 >= t.size() || t[close + 1] != ':') return Bad(text, "missing ':<port>' after the host");
      colon = close + 1;
    } else {
      colon = t.rfind(':');
      if (colon == absl::string_view::npos) return Bad(text, "missing ':<port>' after the host");
      uri.host = std::string(t.substr(0, colon));
      if (uri.host.find(':') != std::string::npos) return Bad(text, "IPv6 host must be in brackets, e.g. [::1]");
    }
    if (uri.host.empty()) return Bad(text, "empty host");
    if (uri.host.find('/') != std::string::npos) return Bad(text, absl::StrCat("host '", uri.host, "' contains '/'"));
    const absl::string_view port = t.substr(colon + 1);
    uint32_t p = 0;
    if (!AllDigits(port) || port.size() > 5 || !absl::SimpleAtoi(port, &p) || p < 1 || p > 65535) {
      return Bad(text, absl::StrCat("port '", port, "' is not in 1..65535"));
    }
    uri.port = uint16_t(p);
    return uri;
  }
  if (absl::ConsumePrefix(&t, "serial:")) {
    uri.scheme = "serial";
    const size_t at = t.rfind('@');
    absl::string_view path = t;
    if (at != absl::string_view::npos) {
      path = t.substr(0, at);
      const absl::string_view baud = t.substr(at + 1);
      uint32_t b = 0;
      if (!AllDigits(baud) || baud.size() > 8 || !absl::SimpleAtoi(baud, &b) || b == 0) {
        return Bad(text, absl::StrCat("baud rate '", baud, "' is not a positive integer"));
      }
      uri.baud = b;
    }
    if (path.empty()) return Bad(text, "empty serial device path");
    uri.serial_path = std::string(path);
    return uri;
  }
  if (absl::ConsumePrefix(&t, "usb:")) {
    uri.scheme = "usb";
    std::vector<absl::string_view> parts = absl::StrSplit(t, absl::MaxSplits(':', 2));
    if (parts.size() < 2) return Bad(text, "expected usb:<vid>:<pid>[:<serial>]");
    std::optional<uint16_t> vid = ParseHex16(parts[0]);
    if (!vid) return Bad(text, absl::StrCat("vendor id '", parts[0], "' is not 1..4 hex digits"));
    std::optional<uint16_t> pid = ParseHex16(parts[1]);
    if (!pid) return Bad(text, absl::StrCat("product id '", parts[1], "' is not 1..4 hex digits"));
    uri.vendor_id = vid;
    uri.product_id = pid;
    if (parts.size() == 3) {
      if (parts[2].empty()) return Bad(text, "empty serial number after the product id");
      uri.usb_serial = std::string(parts[2]);
    }
    return uri;
  }
  if (absl::ConsumePrefix(&t, "usb")) {
    uri.scheme = "usb";
    int index = 0;
    if (!t.empty() && (!AllDigits(t) || t.size() > 3 || !absl::SimpleAtoi(t, &index))) {
      return Bad(text, absl::StrCat("USB index '", t, "' is not a number (usb0, usb1, ...)"));
    }
    uri.usb_index = index;
    return uri;
  }
  const size_t colon = text.find(':');
  return Bad(text, absl::StrCat("unknown device kind '", text.substr(0, colon),
                                "' (known: sim, usb<N>, usb:<vid>:<pid>, serial:<path>, tcp://<host>:<port>)"));
}

}  // namespace pim::runtime
