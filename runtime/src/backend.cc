#include "pim/runtime/backend.h"

#include <algorithm>
#include <cstddef>
#include <vector>

#include "absl/strings/str_cat.h"
#include "pim/runtime/tile_accumulation.h"

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

absl::Status CheckLayerBatch(const LayerMapping& layer, const InputBatch& inputs, size_t sums_size) {
  const int m_count = inputs.vectors;
  if (m_count < 0 || inputs.width != layer.reduction || (m_count > 0 && inputs.codes == nullptr)) {
    return absl::InvalidArgumentError(absl::StrCat("layer '", layer.name, "': input batch of ",
                                                   m_count, " vectors of width ", inputs.width,
                                                   ", layer reduction K is ", layer.reduction));
  }
  if (inputs.input_bits != layer.input_bits) {
    return absl::InvalidArgumentError(absl::StrCat("layer '", layer.name, "': input batch has ",
                                                   inputs.input_bits, "-bit codes, layer expects ",
                                                   layer.input_bits));
  }
  if (sums_size != size_t(m_count) * size_t(layer.out_channels)) {
    return absl::InvalidArgumentError(absl::StrCat("layer '", layer.name, "': sums buffer holds ",
                                                   sums_size, " values, need ", m_count, " x ",
                                                   layer.out_channels));
  }
  return absl::OkStatus();
}

void GatherTileInputs(const InputBatch& inputs, const TileSpec& tile, int m_begin, int m_end,
                      std::vector<uint8_t>* out) {
  const size_t rows = size_t(tile.rows());
  out->resize(size_t(m_end - m_begin) * rows);
  for (int m = m_begin; m < m_end; ++m) {
    const uint8_t* src = inputs.codes + size_t(m) * size_t(inputs.width) + size_t(tile.k_begin);
    std::copy(src, src + rows, out->begin() + ptrdiff_t(size_t(m - m_begin) * rows));
  }
}

absl::Status Backend::RunLayer(const LayerMapping& layer, const InputBatch& inputs,
                               absl::Span<int32_t> sums) {
  if (absl::Status s = CheckLayerBatch(layer, inputs, sums.size()); !s.ok()) return s;
  std::fill(sums.begin(), sums.end(), 0);
  const int m_count = inputs.vectors;
  const int conversions = ConversionsPerOutput(layer.scheme, layer.input_bits);
  std::vector<uint8_t> tile_inputs;
  std::vector<int16_t> codes;
  for (const TileSpec& tile : layer.tiles) {
    // The device sees only the tile's rows: gather them into a contiguous [M][rows] block.
    GatherTileInputs(inputs, tile, 0, m_count, &tile_inputs);
    InputBatch batch{tile_inputs.data(), m_count, tile.rows(), inputs.input_bits, inputs.first_sample};
    codes.assign(size_t(m_count) * size_t(tile.outputs()) * size_t(conversions), 0);
    if (absl::Status s = RunTile(tile.id, batch, absl::MakeSpan(codes)); !s.ok()) return s;
    AccumulateTileCodes(layer.scheme, conversions, tile, layer.out_channels, 0, m_count,
                        codes.data(), RawCodeValue, sums.data());
  }
  return absl::OkStatus();
}

}  // namespace pim::runtime
