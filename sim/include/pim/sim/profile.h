#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "pim/runtime/chip_spec.h"
#include "pim/sim/adc_model.h"

namespace pim::proto {
class NonIdealityProfile;
}

namespace pim::sim {

// Validates a non-ideality profile against the chip it applies to and converts it. Every field
// is range-checked; an explicit column table must name a column of the chip, have 2^b - 1
// finite nondecreasing thresholds for some b in 1..adc_bits, and appear once. Errors name
// `origin`, the field and the value:
//   "typical.textproto: profile field 'noise_sigma_lsb' is -1, must be in [0, 16]".
absl::StatusOr<NonIdealityParams> ProfileFromProto(const proto::NonIdealityProfile& profile,
                                                   const runtime::ChipSpec& spec,
                                                   const std::string& origin);

// Resolves the `profile=` value of a sim device URI: an existing file, else the name of a
// bundled chip file in runtime::ChipsDirectory() ("typical" -> <dir>/typical.textproto).
std::string ResolveProfilePath(const std::string& name_or_path);

}  // namespace pim::sim
