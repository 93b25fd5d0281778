#pragma once

#include <string>

#include "pim/calibration/adc_calibration.h"

namespace pim::calibration {

// A self-contained HTML page (inline SVG and CSS, no scripts, no network) describing a
// measurement: device, sweep settings, per (resolution, mode) a summary, the measured transfer
// curves of the best and worst columns against the ideal, INL and DNL against code for every
// column, noise / INL / DNL per column, and a table of every column's figures.
std::string AdcReportHtml(const AdcCalibration& calibration);

}  // namespace pim::calibration
