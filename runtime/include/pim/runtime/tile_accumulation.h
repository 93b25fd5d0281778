#pragma once

// The host side of a layer run tile by tile (docs/onnx-convention.md 3.1): checking a batch against its layer,
// gathering a tile's rows out of the layer's input vectors, and the digital accumulation of a
// tile's ADC codes into the layer's sums. Shared by Backend::RunLayer, the device backends and
// linearized runs, so the scheme arithmetic is written once.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "pim/runtime/backend.h"

namespace pim::runtime {

// OK when `inputs` holds vectors of the layer's width and bits and `sums_size` is M x O.
absl::Status CheckLayerBatch(const LayerMapping& layer, const InputBatch& inputs, size_t sums_size);

// Copies rows [k_begin, k_end) of vectors [m_begin, m_end) of `inputs` into `out`,
// contiguous [m_end - m_begin][tile.rows()].
void GatherTileInputs(const InputBatch& inputs, const TileSpec& tile, int m_begin, int m_end,
                      std::vector<uint8_t>* out);

// Adds one tile's contribution to sums [M][out_channels] for vectors [m_begin, m_end).
// `codes` is [m_end - m_begin][tile.outputs()][conversions] as RunTile returns them.
// `value(output, half, code)` gives the number a code stands for: the code itself on an ideal
// chip, its linearized value with a calibration; `half` is 1 for the differential scheme's
// negative column. Native adds c, differential c+ - c-, bit-serial sum_j 2^j c_j.
template <typename Sum, typename CodeValue>
void AccumulateTileCodes(Scheme scheme, int conversions, const TileSpec& tile, int out_channels,
                         int m_begin, int m_end, const int16_t* codes, CodeValue value, Sum* sums) {
  const int16_t* c = codes;
  for (int m = m_begin; m < m_end; ++m) {
    Sum* out = sums + size_t(m) * size_t(out_channels) + size_t(tile.out_begin);
    for (int o = 0; o < tile.outputs(); ++o, c += conversions) {
      Sum s = 0;
      switch (scheme) {
        case Scheme::kNative: s = value(o, 0, c[0]); break;
        case Scheme::kDifferential: s = value(o, 0, c[0]) - value(o, 1, c[1]); break;
        case Scheme::kBitSerial:
          for (int j = 0; j < conversions; ++j) s += value(o, 0, c[j]) * Sum(int64_t(1) << j);
          break;
      }
      out[o] += s;
    }
  }
}

// The ideal chip's code value: the code itself.
inline int32_t RawCodeValue(int /*output*/, int /*half*/, int16_t code) { return code; }

}  // namespace pim::runtime
