#include "reference_chip.h"

#include <algorithm>
#include <cmath>

#include <cstdio>
#include <cstdlib>
#include "absl/strings/str_cat.h"
#include "pim/runtime/chip_file.h"

namespace pim::drivers::testing {

ReferenceChip::ReferenceChip(runtime::ChipSpec spec, bool dither) : dither_(dither) {
  info_.spec = std::move(spec);
  info_.backend = "reference";
}

absl::Status ReferenceChip::WriteTile(const runtime::TileImage& image) {
  if (image.codes.size() != size_t(image.tile.rows()) * size_t(image.tile.outputs())) {
    return absl::InvalidArgumentError(absl::StrCat("tile ", image.tile.id, ": bad code count"));
  }
  tiles_[image.tile.id] = Tile{image, {}, false};
  return absl::OkStatus();
}

absl::Status ReferenceChip::ConfigureAdc(uint32_t tile_id, const runtime::AdcSetting& setting) {
  auto it = tiles_.find(tile_id);
  if (it == tiles_.end()) return absl::NotFoundError(absl::StrCat("tile ", tile_id, " unknown"));
  it->second.adc = setting;
  it->second.configured = true;
  return absl::OkStatus();
}

absl::Status ReferenceChip::RunTile(uint32_t tile_id, const runtime::InputBatch& in,
                                    absl::Span<int16_t> codes) {
  auto it = tiles_.find(tile_id);
  if (it == tiles_.end()) return absl::NotFoundError(absl::StrCat("tile ", tile_id, " unknown"));
  const Tile& t = it->second;
  if (!t.configured) return absl::FailedPreconditionError(absl::StrCat("tile ", tile_id, " has no ADC"));
  const int rows = t.image.tile.rows();
  const int outputs = t.image.tile.outputs();
  if (in.width != rows) return absl::InvalidArgumentError("width != rows");
  const int conv = runtime::ConversionsPerOutput(t.image.scheme, in.input_bits);
  if (codes.size() != size_t(in.vectors) * size_t(outputs) * size_t(conv)) {
    return absl::InvalidArgumentError("codes size");
  }
  const int b = t.adc.adc_bits;
  size_t at = 0;
  for (int m = 0; m < in.vectors; ++m) {
    const uint8_t* x = in.codes + size_t(m) * size_t(rows);
    const uint64_t sample = in.first_sample + uint64_t(m);
    for (int o = 0; o < outputs; ++o) {
      const int8_t* q = t.image.codes.data() + size_t(o) * size_t(rows);
      for (int j = 0; j < conv; ++j) {
        int64_t p = 0;
        bool is_unsigned = false;
        for (int k = 0; k < rows; ++k) {
          switch (t.image.scheme) {
            case runtime::Scheme::kNative: p += int64_t(q[k]) * x[k]; break;
            case runtime::Scheme::kDifferential:
              is_unsigned = true;
              p += int64_t(j == 0 ? std::max<int>(q[k], 0) : std::max<int>(-q[k], 0)) * x[k];
              break;
            case runtime::Scheme::kBitSerial: p += int64_t(q[k]) * ((x[k] >> j) & 1); break;
          }
        }
        double c = std::nearbyint(double(p) / t.adc.adc_step);  // round-half-even by default
        if (dither_) {
          const uint64_t h = (uint64_t(tile_id) * 1000003u + uint64_t(o) * 10007u + uint64_t(j) * 101u +
                              sample * 7919u) % 3u;
          c += double(int(h) - 1);
        }
        const double lo = is_unsigned ? 0.0 : -std::ldexp(1.0, b - 1);
        const double hi = is_unsigned ? std::ldexp(1.0, b) - 1 : std::ldexp(1.0, b - 1) - 1;
        codes[at++] = int16_t(std::clamp(c, lo, hi));
        conversions_ += 1;
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<runtime::Counters> ReferenceChip::ReadCounters() {
  return runtime::Counters{{"adc.conversions", conversions_}};
}

runtime::ChipSpec DefaultSpec() {
  absl::StatusOr<proto::ChipFile> file = runtime::ReadChipFile(runtime::DefaultChipFilePath());
  absl::StatusOr<runtime::ChipSpec> spec =
      file.ok() ? runtime::ChipSpecFromProto(file->spec()) : absl::StatusOr<runtime::ChipSpec>(file.status());
  if (!spec.ok()) {
    std::fprintf(stderr, "default chip spec: %s\n", spec.status().ToString().c_str());
    std::abort();
  }
  return *spec;
}

}  // namespace pim::drivers::testing
