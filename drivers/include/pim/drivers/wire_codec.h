#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "pim/proto/wire.pb.h"
#include "pim/runtime/backend.h"

namespace pim::drivers {

// Conversions between the runtime's types and wire.proto messages, shared by the host
// (DeviceBackend) and the device (DeviceEngine) so both sides agree on every bit layout of
// docs/protocol.md section 4. Every function that reads a message validates sizes and ranges
// first and returns InvalidArgument naming the field and the value.

proto::Scheme SchemeToProto(runtime::Scheme scheme);
absl::StatusOr<runtime::Scheme> SchemeFromProto(proto::Scheme scheme);

// Tile geometry and weights.
void TileToWire(const runtime::TileImage& image, proto::wire::WriteTileRequest* out);
absl::StatusOr<runtime::TileImage> TileFromWire(const proto::wire::TileHeader& header,
                                                const std::string& codes);

// Bytes of M vectors of `rows` codes of `input_bits` bits, packed (either encoding).
uint64_t PackedInputBytes(uint64_t vectors, uint64_t rows, uint64_t input_bits);

// Packs `batch` (codes [M][width]) into `out` in `encoding`. InvalidArgument if a code does not
// fit in input_bits bits.
absl::Status PackInputs(const runtime::InputBatch& batch, proto::wire::InputEncoding encoding,
                        std::string* out);

// Unpacks a RunMvm request's inputs to codes [M][rows]. Checks the byte count against
// vectors, rows and input_bits (1..8) before touching the data.
absl::Status UnpackInputs(const proto::wire::RunMvmRequest& request, std::vector<uint8_t>* codes);

// ADC codes: 1 byte each when the ADC has at most 7 bits (every signed and unsigned code fits
// an int8), else 2 (little-endian int16).
int CodeBytesForAdcBits(int adc_bits);
void PackCodes(absl::Span<const int16_t> codes, int code_bytes, std::string* out);
// Checks shape and size of a RunMvm response against what was asked (and its code width against
// the ADC's) and unpacks into `codes` ([M][outputs][conversions]); a code outside the range of an
// `adc_bits` ADC in that mode (signed [-2^(b-1), 2^(b-1)-1], unsigned [0, 2^b-1]) is an error.
absl::Status UnpackCodes(const proto::wire::RunMvmResponse& response, uint32_t tile_id,
                         uint32_t vectors, uint32_t outputs, uint32_t conversions, int adc_bits,
                         bool signed_codes, absl::Span<int16_t> codes);

}  // namespace pim::drivers
