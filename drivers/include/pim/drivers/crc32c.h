#pragma once

#include <cstdint>

#include "absl/types/span.h"

namespace pim::drivers {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, init and final XOR 0xFFFFFFFF), the
// frame check of the link (docs/protocol.md 2.3). Crc32c("123456789") == 0xE3069283.
// `crc` continues a previous result: Crc32c(b, Crc32c(a)) == Crc32c(a ++ b). Thread-safe.
uint32_t Crc32c(absl::Span<const uint8_t> bytes, uint32_t crc = 0);

}  // namespace pim::drivers
