#include "pim/runtime/backend.h"

#include <algorithm>
#include <cstddef>
#include <vector>

#include "absl/strings/str_cat.h"

namespace pim::runtime {

int ConversionsPerOutput(Scheme scheme, int input_bits) {
  switch (scheme) {
    case Scheme::kNative: return 1;
    case Scheme::kDifferential: return 2;
    case Scheme::kBitSerial: return input_bits;
  }
  return 1;
}

int ColumnsPerWeight(Scheme scheme, int weight_bits, int cell_bits) {
  if (cell_bits <= 0) return 0;
  if (scheme == Scheme::kDifferential) return 2 * ((weight_bits - 1 + cell_bits - 1) / cell_bits);
  return (weight_bits + cell_bits - 1) / cell_bits;
}

absl::Status Backend::LoadLayer(const LayerMapping& layer) {
  const size_t expected = size_t(layer.out_channels) * size_t(layer.reduction);
  if (layer.out_channels <= 0 || layer.reduction <= 0 || layer.weight_codes.size() != expected) {
    return absl::InvalidArgumentError(
        absl::StrCat("layer '", layer.name, "': ", layer.weight_codes.size(), " weight codes for O=",
                     layer.out_channels, " x K=", layer.reduction));
  }
  for (const TileSpec& tile : layer.tiles) {
    if (tile.k_begin < 0 || tile.k_begin >= tile.k_end || tile.k_end > layer.reduction ||
        tile.out_begin < 0 || tile.out_begin >= tile.out_end || tile.out_end > layer.out_channels) {
      return absl::InvalidArgumentError(absl::StrCat(
          "layer '", layer.name, "' tile ", tile.id, ": rows [", tile.k_begin, ", ", tile.k_end,
          ") x outputs [", tile.out_begin, ", ", tile.out_end, ") outside the ", layer.out_channels,
          " x ", layer.reduction, " weight matrix"));
    }
    TileImage image;
    image.tile = tile;
    image.scheme = layer.scheme;
    image.weight_bits = layer.weight_bits;
    image.codes.reserve(size_t(tile.outputs()) * size_t(tile.rows()));
    for (int o = tile.out_begin; o < tile.out_end; ++o) {
      const int8_t* row = layer.weight_codes.data() + size_t(o) * size_t(layer.reduction);
      image.codes.insert(image.codes.end(), row + tile.k_begin, row + tile.k_end);
    }
    if (absl::Status s = WriteTile(image); !s.ok()) return s;
    if (absl::Status s = ConfigureAdc(tile.id, AdcSetting{layer.adc_bits, layer.adc_step}); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status Backend::RunLayer(const LayerMapping& layer, const InputBatch& inputs,
                               absl::Span<int32_t> sums) {
  const int m_count = inputs.vectors;
  const int k_count = layer.reduction;
  const int o_count = layer.out_channels;
  if (m_count < 0 || inputs.width != k_count || (m_count > 0 && inputs.codes == nullptr)) {
    return absl::InvalidArgumentError(absl::StrCat("layer '", layer.name, "': input batch of ",
                                                   m_count, " vectors of width ", inputs.width,
                                                   ", layer reduction K is ", k_count));
  }
  if (inputs.input_bits != layer.input_bits) {
    return absl::InvalidArgumentError(absl::StrCat("layer '", layer.name, "': input batch has ",
                                                   inputs.input_bits, "-bit codes, layer expects ",
                                                   layer.input_bits));
  }
  if (sums.size() != size_t(m_count) * size_t(o_count)) {
    return absl::InvalidArgumentError(absl::StrCat("layer '", layer.name, "': sums buffer holds ",
                                                   sums.size(), " values, need ", m_count, " x ",
                                                   o_count));
  }
  std::fill(sums.begin(), sums.end(), 0);
  const int conversions = ConversionsPerOutput(layer.scheme, layer.input_bits);
  std::vector<uint8_t> tile_inputs;
  std::vector<int16_t> codes;
  for (const TileSpec& tile : layer.tiles) {
    const int rows = tile.rows();
    const int outputs = tile.outputs();
    // The device sees only the tile's rows: gather them into a contiguous [M][rows] block.
    tile_inputs.resize(size_t(m_count) * size_t(rows));
    for (int m = 0; m < m_count; ++m) {
      const uint8_t* src = inputs.codes + size_t(m) * size_t(k_count) + tile.k_begin;
      std::copy(src, src + rows, tile_inputs.begin() + ptrdiff_t(size_t(m) * size_t(rows)));
    }
    InputBatch batch{tile_inputs.data(), m_count, rows, inputs.input_bits, inputs.first_sample};
    codes.assign(size_t(m_count) * size_t(outputs) * size_t(conversions), 0);
    if (absl::Status s = RunTile(tile.id, batch, absl::MakeSpan(codes)); !s.ok()) return s;
    // Digital accumulation on the host, DESIGN 3.3.
    const int16_t* c = codes.data();
    for (int m = 0; m < m_count; ++m) {
      int32_t* out = sums.data() + size_t(m) * size_t(o_count) + tile.out_begin;
      for (int o = 0; o < outputs; ++o, c += conversions) {
        int32_t s = 0;
        switch (layer.scheme) {
          case Scheme::kNative: s = c[0]; break;
          case Scheme::kDifferential: s = int32_t(c[0]) - int32_t(c[1]); break;
          case Scheme::kBitSerial:
            for (int j = 0; j < conversions; ++j) s += int32_t(c[j]) * (int32_t(1) << j);
            break;
        }
        out[o] += s;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace pim::runtime
