#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace pim::drivers {

// Consistent Overhead Byte Stuffing (Cheshire & Baker, 1999): rewrites a byte string so it
// contains no 0x00, at a cost of at most one byte per 254 plus one. The link uses 0x00 as the
// frame delimiter (docs/protocol.md 2.1). Pure functions, thread-safe.

// Largest encoded size of `n` input bytes (without the delimiter).
constexpr size_t CobsMaxEncodedSize(size_t n) { return n + n / 254 + 1; }

// Appends the encoding of `in` to `*out` (no delimiter).
void CobsEncode(absl::Span<const uint8_t> in, std::vector<uint8_t>* out);

// Decodes one encoded frame (no delimiter). Fails with InvalidArgument on a zero byte or a
// code byte that runs past the end, naming the offset. Output is never larger than the input.
absl::StatusOr<std::vector<uint8_t>> CobsDecode(absl::Span<const uint8_t> in);

}  // namespace pim::drivers
