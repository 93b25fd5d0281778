#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "pim/runtime/backend.h"

namespace pim::drivers::testing {

// A random PIM layer of O outputs x K reduction cut into tiles of at most `rows` rows and
// `max_outputs` outputs, placed on distinct (macro, bank) slots of `spec`.
inline runtime::LayerMapping RandomLayer(const runtime::ChipSpec& spec, runtime::Scheme scheme,
                                         int out_channels, int reduction, uint32_t first_tile_id,
                                         uint64_t seed, int max_outputs = 32, int weight_bits = 4,
                                         int input_bits = 4) {
  std::mt19937_64 rng(seed);
  runtime::LayerMapping layer;
  layer.name = "fixture";
  layer.out_channels = out_channels;
  layer.reduction = reduction;
  layer.scheme = scheme;
  layer.rows = spec.rows;
  layer.adc_bits = spec.adc_bits;
  layer.weight_bits = weight_bits;
  layer.input_bits = input_bits;
  const int qmax = (1 << (weight_bits - 1)) - 1;
  layer.adc_step = scheme == runtime::Scheme::kBitSerial ? 2.0 : 9.0;
  layer.weight_codes.resize(size_t(out_channels) * size_t(reduction));
  for (int8_t& q : layer.weight_codes) q = int8_t(int(rng() % uint64_t(2 * qmax + 1)) - qmax);
  const int per_weight = runtime::ColumnsPerWeight(scheme, weight_bits, spec.cell_bits);
  uint32_t id = first_tile_id;
  int slot = int(first_tile_id);
  for (int k0 = 0, g = 0; k0 < reduction; k0 += spec.rows, ++g) {
    for (int o0 = 0; o0 < out_channels; o0 += max_outputs) {
      runtime::TileSpec t;
      t.id = id++;
      t.row_group = g;
      t.k_begin = k0;
      t.k_end = std::min(reduction, k0 + spec.rows);
      t.out_begin = o0;
      t.out_end = std::min(out_channels, o0 + max_outputs);
      t.placement.macro = slot % spec.macros;
      t.placement.bank = (slot / spec.macros) % spec.banks_per_macro;
      t.placement.columns = t.outputs() * per_weight;
      ++slot;
      layer.tiles.push_back(t);
    }
  }
  return layer;
}

inline std::vector<uint8_t> RandomInputs(int vectors, int width, int input_bits, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> codes(size_t(vectors) * size_t(width));
  for (uint8_t& c : codes) c = uint8_t(rng() % (1u << input_bits));
  return codes;
}

}  // namespace pim::drivers::testing
