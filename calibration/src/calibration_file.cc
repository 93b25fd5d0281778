#include "pim/calibration/calibration_file.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace pim::calibration {

proto::Calibration CalibrationToProto(const AdcCalibration& result) {
  proto::Calibration cal;
  cal.set_device_serial(result.chip.serial_number);
  cal.set_firmware_version(result.chip.firmware_version);
  int max_bits = 0;
  for (int b : result.options.adc_bits) max_bits = std::max(max_bits, b);
  cal.set_adc_bits(uint32_t(max_bits));
  cal.set_repeats(uint32_t(result.options.repeats));
  cal.set_created_by("pimcal adc");
  cal.set_device(result.device);
  cal.set_chip_name(result.chip.spec.name);
  cal.set_step_settings(uint32_t(result.options.step_settings));
  cal.set_conversions(uint64_t(result.conversions));
  for (const AdcColumnResult& col : result.columns) {
    const ColumnFit& f = col.fit;
    proto::ColumnTransfer* t = cal.add_columns();
    t->set_macro(uint32_t(col.macro));
    t->set_column(uint32_t(col.column));
    for (double x : f.thresholds) t->add_thresholds(x);
    t->set_noise_sigma_lsb(f.noise_sigma_lsb);
    t->set_gain(f.gain);
    t->set_offset_lsb(f.offset_lsb);
    t->set_adc_bits(uint32_t(f.adc_bits));
    t->set_mode(f.mode == AdcMode::kSigned ? proto::ADC_MODE_SIGNED : proto::ADC_MODE_UNSIGNED);
    t->set_inl_max_lsb(f.inl_max_lsb);
    t->set_inl_rms_lsb(f.inl_rms_lsb);
    t->set_dnl_max_lsb(f.dnl_max_lsb);
    t->set_dnl_rms_lsb(f.dnl_rms_lsb);
    for (size_t i = 0; i < f.measured.size(); ++i) {
      if (!f.measured[i]) t->add_unmeasured_thresholds(uint32_t(i));
    }
  }
  return cal;
}

absl::Status WriteCalibrationFile(const proto::Calibration& calibration, const std::string& path) {
  std::string bytes;
  if (!calibration.SerializeToString(&bytes)) {
    return absl::InternalError(absl::StrCat(path, ": cannot serialize the calibration"));
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot open for writing (", std::strerror(errno), ")"));
  out.write(bytes.data(), std::streamsize(bytes.size()));
  out.close();
  if (!out) return absl::DataLossError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

}  // namespace pim::calibration
