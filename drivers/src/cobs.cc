#include "pim/drivers/cobs.h"

#include "absl/strings/str_cat.h"

namespace pim::drivers {

void CobsEncode(absl::Span<const uint8_t> in, std::vector<uint8_t>* out) {
  out->reserve(out->size() + CobsMaxEncodedSize(in.size()));
  size_t code_at = out->size();
  out->push_back(0);  // placeholder for the first code byte
  uint8_t code = 1;
  for (uint8_t b : in) {
    if (b != 0) {
      out->push_back(b);
      ++code;
    }
    if (b == 0 || code == 0xFF) {
      (*out)[code_at] = code;
      code_at = out->size();
      out->push_back(0);
      code = 1;
    }
  }
  (*out)[code_at] = code;
}

absl::StatusOr<std::vector<uint8_t>> CobsDecode(absl::Span<const uint8_t> in) {
  std::vector<uint8_t> out;
  out.reserve(in.size());
  size_t i = 0;
  while (i < in.size()) {
    const uint8_t code = in[i];
    if (code == 0) return absl::InvalidArgumentError(absl::StrCat("COBS: zero byte at offset ", i));
    if (size_t(i) + code > in.size()) {
      return absl::InvalidArgumentError(absl::StrCat("COBS: code byte ", int(code), " at offset ", i,
                                                     " runs past the end of a ", in.size(),
                                                     "-byte frame"));
    }
    for (size_t j = 1; j < code; ++j) {
      const uint8_t b = in[i + j];
      if (b == 0) {
        return absl::InvalidArgumentError(absl::StrCat("COBS: zero byte at offset ", i + j));
      }
      out.push_back(b);
    }
    i += code;
    // A code below 0xFF stands for "data then a zero", except at the very end.
    if (code != 0xFF && i < in.size()) out.push_back(0);
  }
  return out;
}

}  // namespace pim::drivers
