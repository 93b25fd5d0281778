#pragma once

#include <string>
#include <string_view>

namespace pim::runtime {

// SHA-256 (FIPS 180-4) of `data`, as 64 lowercase hex digits. Small and dependency-free; used to
// record the hashes of the source model and of an ADC calibration file in the Program.
std::string Sha256Hex(std::string_view data);

}  // namespace pim::runtime
