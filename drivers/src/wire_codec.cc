#include "pim/drivers/wire_codec.h"

#include "absl/strings/str_cat.h"

namespace pim::drivers {

namespace wire = proto::wire;

proto::Scheme SchemeToProto(runtime::Scheme scheme) {
  switch (scheme) {
    case runtime::Scheme::kNative: return proto::NATIVE;
    case runtime::Scheme::kDifferential: return proto::DIFFERENTIAL;
    case runtime::Scheme::kBitSerial: return proto::BIT_SERIAL;
  }
  return proto::SCHEME_UNSPECIFIED;
}

absl::StatusOr<runtime::Scheme> SchemeFromProto(proto::Scheme scheme) {
  switch (scheme) {
    case proto::NATIVE: return runtime::Scheme::kNative;
    case proto::DIFFERENTIAL: return runtime::Scheme::kDifferential;
    case proto::BIT_SERIAL: return runtime::Scheme::kBitSerial;
    default: break;
  }
  return absl::InvalidArgumentError(absl::StrCat("scheme ", int(scheme), " is not a known scheme"));
}

void TileToWire(const runtime::TileImage& image, wire::WriteTileRequest* out) {
  wire::TileHeader* h = out->mutable_tile();
  const runtime::TileSpec& t = image.tile;
  h->set_tile_id(t.id);
  h->set_row_group(uint32_t(t.row_group));
  h->set_k_begin(uint32_t(t.k_begin));
  h->set_k_end(uint32_t(t.k_end));
  h->set_out_begin(uint32_t(t.out_begin));
  h->set_out_end(uint32_t(t.out_end));
  h->set_macro(uint32_t(t.placement.macro));
  h->set_bank(uint32_t(t.placement.bank));
  h->set_row_offset(uint32_t(t.placement.row_offset));
  h->set_column_offset(uint32_t(t.placement.column_offset));
  h->set_columns(uint32_t(t.placement.columns));
  h->set_load_phase(uint32_t(t.load_phase));
  h->set_scheme(SchemeToProto(image.scheme));
  h->set_weight_bits(uint32_t(image.weight_bits));
  out->set_codes(reinterpret_cast<const char*>(image.codes.data()), image.codes.size());
}

absl::StatusOr<runtime::TileImage> TileFromWire(const wire::TileHeader& h, const std::string& codes) {
  // Every index must fit an int before it becomes one; 1<<24 is far above any chip dimension.
  constexpr uint32_t kLimit = 1u << 24;
  const std::pair<const char*, uint32_t> fields[] = {
      {"row_group", h.row_group()}, {"k_begin", h.k_begin()},     {"k_end", h.k_end()},
      {"out_begin", h.out_begin()}, {"out_end", h.out_end()},     {"macro", h.macro()},
      {"bank", h.bank()},           {"row_offset", h.row_offset()}, {"column_offset", h.column_offset()},
      {"columns", h.columns()},     {"load_phase", h.load_phase()}, {"weight_bits", h.weight_bits()}};
  for (const auto& [name, value] : fields) {
    if (value >= kLimit) {
      return absl::InvalidArgumentError(
          absl::StrCat("tile ", h.tile_id(), ": ", name, " = ", value, " is out of range"));
    }
  }
  if (h.k_end() <= h.k_begin() || h.out_end() <= h.out_begin()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tile ", h.tile_id(), ": rows [", h.k_begin(), ", ", h.k_end(), ") x outputs [",
        h.out_begin(), ", ", h.out_end(), ") is empty"));
  }
  absl::StatusOr<runtime::Scheme> scheme = SchemeFromProto(h.scheme());
  if (!scheme.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("tile ", h.tile_id(), ": ", scheme.status().message()));
  }
  if (h.weight_bits() < 2 || h.weight_bits() > 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("tile ", h.tile_id(), ": weight_bits = ", h.weight_bits(), ", must be in [2, 8]"));
  }
  const uint64_t rows = h.k_end() - h.k_begin();
  const uint64_t outputs = h.out_end() - h.out_begin();
  if (codes.size() != rows * outputs) {
    return absl::InvalidArgumentError(absl::StrCat("tile ", h.tile_id(), ": ", codes.size(),
                                                   " weight codes for ", outputs, " outputs x ",
                                                   rows, " rows"));
  }
  const int max_code = (1 << (h.weight_bits() - 1)) - 1;
  runtime::TileImage image;
  runtime::TileSpec& t = image.tile;
  t.id = h.tile_id();
  t.row_group = int(h.row_group());
  t.k_begin = int(h.k_begin());
  t.k_end = int(h.k_end());
  t.out_begin = int(h.out_begin());
  t.out_end = int(h.out_end());
  t.placement.macro = int(h.macro());
  t.placement.bank = int(h.bank());
  t.placement.row_offset = int(h.row_offset());
  t.placement.column_offset = int(h.column_offset());
  t.placement.columns = int(h.columns());
  t.load_phase = int(h.load_phase());
  image.scheme = *scheme;
  image.weight_bits = int(h.weight_bits());
  image.codes.resize(codes.size());
  for (size_t i = 0; i < codes.size(); ++i) {
    const int8_t c = int8_t(uint8_t(codes[i]));
    if (c > max_code || c < -max_code) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tile ", h.tile_id(), ": weight code ", int(c), " at output ", i / rows, " row ",
          i % rows, " does not fit ", h.weight_bits(), " bits (|code| <= ", max_code, ")"));
    }
    image.codes[i] = c;
  }
  return image;
}

uint64_t PackedInputBytes(uint64_t vectors, uint64_t rows, uint64_t input_bits) {
  return (vectors * rows * input_bits + 7) / 8;
}

absl::Status PackInputs(const runtime::InputBatch& batch, wire::InputEncoding encoding,
                        std::string* out) {
  const int bits = batch.input_bits;
  if (bits < 1 || bits > 8) {
    return absl::InvalidArgumentError(absl::StrCat("input_bits = ", bits, ", must be in [1, 8]"));
  }
  const uint64_t m_count = uint64_t(batch.vectors);
  const uint64_t rows = uint64_t(batch.width);
  out->assign(PackedInputBytes(m_count, rows, uint64_t(bits)), '\0');
  auto* dst = reinterpret_cast<uint8_t*>(out->data());
  const unsigned limit = 1u << bits;
  for (uint64_t m = 0; m < m_count; ++m) {
    for (uint64_t k = 0; k < rows; ++k) {
      const unsigned x = batch.codes[m * rows + k];
      if (x >= limit) {
        return absl::InvalidArgumentError(absl::StrCat("input code ", x, " at vector ", m, " row ",
                                                       k, " does not fit ", bits, " bits"));
      }
      for (int j = 0; j < bits; ++j) {
        if (((x >> j) & 1u) == 0) continue;
        const uint64_t bit = encoding == wire::BIT_PLANES ? (m * uint64_t(bits) + uint64_t(j)) * rows + k
                                                          : (m * rows + k) * uint64_t(bits) + uint64_t(j);
        dst[bit >> 3] |= uint8_t(1u << (bit & 7));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status UnpackInputs(const wire::RunMvmRequest& r, std::vector<uint8_t>* codes) {
  if (r.input_bits() < 1 || r.input_bits() > 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("run_mvm tile ", r.tile_id(), ": input_bits = ", r.input_bits(), ", must be in [1, 8]"));
  }
  if (r.encoding() != wire::PACKED && r.encoding() != wire::BIT_PLANES) {
    return absl::InvalidArgumentError(
        absl::StrCat("run_mvm tile ", r.tile_id(), ": input encoding ", int(r.encoding()), " is unknown"));
  }
  const uint64_t m_count = r.vectors();
  const uint64_t rows = r.rows();
  const uint64_t bits = r.input_bits();
  // vectors and rows are u32, bits <= 8: the product fits u64 without overflow.
  const uint64_t want = PackedInputBytes(m_count, rows, bits);
  if (r.inputs().size() != want) {
    return absl::InvalidArgumentError(absl::StrCat("run_mvm tile ", r.tile_id(), ": ",
                                                   r.inputs().size(), " input bytes, ", m_count,
                                                   " vectors x ", rows, " rows x ", bits,
                                                   " bits need ", want));
  }
  const auto* src = reinterpret_cast<const uint8_t*>(r.inputs().data());
  codes->assign(m_count * rows, 0);
  for (uint64_t m = 0; m < m_count; ++m) {
    for (uint64_t k = 0; k < rows; ++k) {
      unsigned x = 0;
      for (uint64_t j = 0; j < bits; ++j) {
        const uint64_t bit = r.encoding() == wire::BIT_PLANES ? (m * bits + j) * rows + k
                                                              : (m * rows + k) * bits + j;
        x |= unsigned((src[bit >> 3] >> (bit & 7)) & 1u) << j;
      }
      (*codes)[m * rows + k] = uint8_t(x);
    }
  }
  return absl::OkStatus();
}

int CodeBytesForAdcBits(int adc_bits) { return adc_bits <= 7 ? 1 : 2; }

void PackCodes(absl::Span<const int16_t> codes, int code_bytes, std::string* out) {
  out->resize(codes.size() * size_t(code_bytes));
  auto* dst = reinterpret_cast<uint8_t*>(out->data());
  if (code_bytes == 1) {
    for (size_t i = 0; i < codes.size(); ++i) dst[i] = uint8_t(int8_t(codes[i]));
  } else {
    for (size_t i = 0; i < codes.size(); ++i) {
      const uint16_t v = uint16_t(codes[i]);
      dst[2 * i] = uint8_t(v);
      dst[2 * i + 1] = uint8_t(v >> 8);
    }
  }
}

absl::Status UnpackCodes(const wire::RunMvmResponse& r, uint32_t tile_id, uint32_t vectors,
                         uint32_t outputs, uint32_t conversions, int adc_bits, bool signed_codes,
                         absl::Span<int16_t> codes) {
  if (r.tile_id() != tile_id || r.vectors() != vectors || r.outputs() != outputs ||
      r.conversions() != conversions) {
    return absl::InvalidArgumentError(absl::StrCat(
        "run_mvm response is tile ", r.tile_id(), " ", r.vectors(), "x", r.outputs(), "x",
        r.conversions(), ", asked for tile ", tile_id, " ", vectors, "x", outputs, "x", conversions));
  }
  if (int(r.code_bytes()) != CodeBytesForAdcBits(adc_bits)) {
    return absl::InvalidArgumentError(absl::StrCat("run_mvm response tile ", tile_id, ": code_bytes = ", r.code_bytes(),
                                                   ", a ", adc_bits, "-bit ADC sends ",
                                                   CodeBytesForAdcBits(adc_bits)));
  }
  const uint64_t n = uint64_t(vectors) * outputs * conversions;
  if (codes.size() != n || r.codes().size() != n * r.code_bytes()) {
    return absl::InvalidArgumentError(absl::StrCat("run_mvm response tile ", tile_id, ": ",
                                                   r.codes().size(), " code bytes for ", n,
                                                   " codes of ", r.code_bytes(), " bytes"));
  }
  const auto* src = reinterpret_cast<const uint8_t*>(r.codes().data());
  if (r.code_bytes() == 1) {
    for (uint64_t i = 0; i < n; ++i) codes[i] = int8_t(src[i]);
  } else {
    for (uint64_t i = 0; i < n; ++i) codes[i] = int16_t(uint16_t(src[2 * i]) | uint16_t(src[2 * i + 1] << 8));
  }
  const int lo = signed_codes ? -(1 << (adc_bits - 1)) : 0;
  const int hi = signed_codes ? (1 << (adc_bits - 1)) - 1 : (1 << adc_bits) - 1;
  for (uint64_t i = 0; i < n; ++i) {
    if (codes[i] < lo || codes[i] > hi) {
      return absl::InvalidArgumentError(absl::StrCat("run_mvm response tile ", tile_id, ": code ", codes[i],
                                                     " at index ", i, " is outside the ", adc_bits, "-bit ",
                                                     signed_codes ? "signed" : "unsigned", " range [", lo, ", ",
                                                     hi, "]"));
    }
  }
  return absl::OkStatus();
}

}  // namespace pim::drivers
