#include "pim/runtime/json.h"

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace pim::runtime {

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  return absl::StrFormat("%.17g", v);
}

std::string BnCalibrationRecordJson(const proto::BnCalibrationRecord& r) {
  std::vector<std::string> names;
  for (const std::string& l : r.layers()) names.push_back(JsonString(l));
  std::string adc = "null";
  if (r.has_adc_calibration()) {
    adc = absl::StrCat("{\"path\":", JsonString(r.adc_calibration().path()), ",\"sha256\":",
                       JsonString(r.adc_calibration().sha256()), ",\"device_serial\":",
                       JsonString(r.adc_calibration().device_serial()), "}");
  }
  return absl::StrCat("{\"device\":", JsonString(r.device()), ",\"device_serial\":", JsonString(r.device_serial()),
                      ",\"data\":", JsonString(r.data()), ",\"samples\":", r.samples(), ",\"layers\":[",
                      absl::StrJoin(names, ","), "],\"adc_calibration\":", adc, "}");
}

}  // namespace pim::runtime
