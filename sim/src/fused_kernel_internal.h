#pragma once

// Private layout shared by the fused kernel's ISA variants (fused_kernel*.cc).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pim/sim/adc_model.h"
#include "pim/sim/fused_kernel.h"

namespace pim::sim {

// The ADC that converts one (row group, conversion column): its transfer curve and the noise key
// fields (tile id, physical column in its macro).
struct AdcPort {
  const ColumnCurve* curve = nullptr;
  uint32_t tile_id = 0;
  uint32_t column = 0;
};

struct FusedLayer::Packed {
  std::string name;
  runtime::Scheme scheme = runtime::Scheme::kNative;
  KernelIsa isa = KernelIsa::kScalar;
  int threads = 0;

  int out_channels = 0;  // O
  int reduction = 0;     // K
  int rows = 0;          // R
  int groups = 0;        // G = ceil(K / R)
  int input_bits = 0;
  int planes = 1;        // virtual input rows per sample: input_bits for bit_serial, else 1
  int max_x = 0;         // largest input code the kernel sees (1 for bit planes)
  int max_abs_q = 0;     // largest |Q| in the layer
  AdcRange range;
  double step = 1.0;

  // Original codes [O][K] (the scalar reference reads these).
  std::vector<int8_t> q;

  // SIMD packing. Row group g occupies `padded_rows` (R rounded up to 4) bytes of a repacked
  // input row; weights are [block][g][step][vec][lanes][4] int8 with `vecs` = 2 (Qp, Qn) for
  // differential, else 1; lanes = 8 (AVX2) or 16 (AVX-512). Zero padding everywhere.
  int lanes = 0;
  int blocks = 0;        // ceil(O / lanes)
  int padded_rows = 0;
  int steps = 0;         // padded_rows / 4
  int vecs = 1;
  int flush_steps = 0;   // AVX2: int16 accumulation steps before widening (exactness bound)
  std::vector<int8_t> w;

  // Non-ideal ADC: curves (owned) and ports [G][O * conv_columns], conv_columns = 2 for
  // differential (+, -), else 1. Empty when the ADC is ideal.
  bool ideal = true;
  uint64_t seed = 0;
  int conv_columns = 1;
  std::vector<std::unique_ptr<ColumnCurve>> curves;
  std::vector<AdcPort> ports;

  const AdcPort& Port(int g, int o, int conv) const {
    return ports[(size_t(g) * out_channels + o) * conv_columns + conv];
  }
};

// Arguments of one ISA block call: virtual rows [v_begin, v_end) (multiples of `planes`) by
// output blocks [b_begin, b_end) of the repacked input `xp` ([V][G][padded_rows]).
struct KernelCall {
  const FusedLayer::Packed* layer = nullptr;
  const uint8_t* xp = nullptr;
  uint64_t first_sample = 0;
  int32_t* sums = nullptr;  // [M][O]
};

// One conversion through the non-ideal model (shared by every variant, so results agree).
inline int NonIdealCode(const FusedLayer::Packed& L, int64_t p, int g, int o, int conv,
                        int plane, uint64_t sample, bool* saturated);

void RunScalarRows(const FusedLayer::Packed& L, const runtime::InputBatch& in, int m_begin,
                   int m_end, int32_t* sums, int64_t* saturations);
void RunAvx2Block(const KernelCall& call, int v_begin, int v_end, int b_begin, int b_end,
                  int64_t* saturations);
void RunAvx512Block(const KernelCall& call, int v_begin, int v_end, int b_begin, int b_end,
                    int64_t* saturations);

// The loops every SIMD variant shares. `Isa` provides
//   template <int MB, bool kDiff, bool kIdeal> static void Tile(const KernelCall&, int v0, int b, int64_t*)
// (MB virtual rows from v0 by output block b, all row groups) and static int RowsPerTile(const Packed&).
template <class Isa>
struct BlockDriver {
  template <bool kDiff, bool kIdeal>
  static void TileN(int mb, const KernelCall& call, int v0, int b, int64_t* sat) {
    switch (mb) {
      case 1: return Isa::template Tile<1, kDiff, kIdeal>(call, v0, b, sat);
      case 2: return Isa::template Tile<2, kDiff, kIdeal>(call, v0, b, sat);
      case 3: return Isa::template Tile<3, kDiff, kIdeal>(call, v0, b, sat);
      case 4: return Isa::template Tile<4, kDiff, kIdeal>(call, v0, b, sat);
      case 5: return Isa::template Tile<5, kDiff, kIdeal>(call, v0, b, sat);
      case 6: return Isa::template Tile<6, kDiff, kIdeal>(call, v0, b, sat);
      case 7: return Isa::template Tile<7, kDiff, kIdeal>(call, v0, b, sat);
      case 8: return Isa::template Tile<8, kDiff, kIdeal>(call, v0, b, sat);
    }
    __builtin_trap();
  }

  static void Run(const KernelCall& call, int v_begin, int v_end, int b_begin, int b_end,
                  int64_t* saturations) {
    const FusedLayer::Packed& L = *call.layer;
    const bool diff = L.scheme == runtime::Scheme::kDifferential;
    const int mb = Isa::RowsPerTile(L);
    auto run = [&](int rows, int v, int b) {
      if (diff) {
        L.ideal ? TileN<true, true>(rows, call, v, b, saturations)
                : TileN<true, false>(rows, call, v, b, saturations);
      } else {
        L.ideal ? TileN<false, true>(rows, call, v, b, saturations)
                : TileN<false, false>(rows, call, v, b, saturations);
      }
    };
    // Output block outermost: its packed weights (K x lanes bytes) stay in L1 while the rows of
    // the chunk stream past them.
    for (int b = b_begin; b < b_end; ++b) {
      int v = v_begin;
      for (; v + mb <= v_end; v += mb) run(mb, v, b);
      if (v < v_end) run(v_end - v, v, b);
    }
  }
};

}  // namespace pim::sim

#include "pim/sim/noise.h"

namespace pim::sim {

inline int NonIdealCode(const FusedLayer::Packed& L, int64_t p, int g, int o, int conv, int plane,
                        uint64_t sample, bool* saturated) {
  const AdcPort& port = L.Port(g, o, conv);
  const uint64_t key = ConversionNoiseKey(L.seed, port.tile_id, port.column, uint32_t(plane), sample);
  return port.curve->Convert(p, L.step, L.range, key, saturated);
}

}  // namespace pim::sim
