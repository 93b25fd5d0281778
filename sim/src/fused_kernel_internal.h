#pragma once

// Private layout shared by the fused kernel's ISA variants (fused_kernel*.cc).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pim/sim/adc_model.h"
#include "pim/sim/fused_kernel.h"

namespace pim::sim {

// The ADC that converts one (row group, conversion column): its transfer curve and the noise
// keys of its physical column (ColumnNoiseKey of tile id, column and plane), the sample folded in
// per conversion.
struct AdcPort {
  static constexpr int kMaxPlanes = 8;
  const ColumnCurve* curve = nullptr;
  uint64_t noise_keys[kMaxPlanes] = {};
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

  // Ideal ADC on the SIMD paths. When `float_adc_exact`, the float estimate FloatAdcCode (one
  // float multiply by 1/step, rne, clamp) was checked at Create to equal the normative rule for
  // every partial sum the layer can reach, so the kernel converts without a tie test; saturation
  // is then counted against the exact integer bounds: p < sat_below or p > sat_above.
  bool float_adc_exact = false;
  float inv_step = 0;
  int32_t sat_below = 0;
  int32_t sat_above = 0;

  // Non-ideal ADC: curves (owned) and ports [G][O * conv_columns], conv_columns = 2 for
  // differential (+, -), else 1. Empty when the ADC is ideal.
  bool ideal = true;
  bool noisy = false;  // some curve has thermal noise (the AVX2 kernel then estimates it)
  uint64_t seed = 0;
  int conv_columns = 1;
  std::vector<std::unique_ptr<ColumnCurve>> curves;
  std::vector<AdcPort> ports;

  const AdcPort& Port(int g, int o, int conv) const {
    return ports[(size_t(g) * out_channels + o) * conv_columns + conv];
  }
};

// Arguments of one ISA block call: virtual rows [v_begin, v_end) (multiples of `planes`) by
// output blocks [b_begin, b_end). Virtual row v starts at x + (v - v_base) * row_stride, its row
// group g at + g * group_stride; the group's rows are read 4 bytes at a time up to its last row
// rounded up to 4 (the weights there are zero; the bytes must be readable).
struct KernelCall {
  const FusedLayer::Packed* layer = nullptr;
  const uint8_t* x = nullptr;
  int v_base = 0;
  size_t row_stride = 0;
  size_t group_stride = 0;
  uint64_t first_sample = 0;
  int32_t* sums = nullptr;  // [M][O]
};

// How a SIMD tile converts: the verified float estimate, the float estimate with an exact tie
// test (layers where the estimate could not be verified), or the non-ideal model.
enum class AdcPath { kFloatExact, kTieChecked, kNonIdeal };

// The float estimate of the ideal ADC, as the SIMD kernels compute it: fl32(fl32(p) * inv_step)
// clamped to [lo, hi], rounded half to even. Exact for |p| < 2^24 inputs (fl32(p) = p).
inline int FloatAdcCode(int32_t p, float inv_step, AdcRange range) {
  float a = float(p) * inv_step;
  a = std::min(std::max(a, float(range.lo)), float(range.hi));
  return int(std::nearbyint(a));
}

// True when FloatAdcCode(p, float(1 / step)) == IdealAdcCode(p, step) for every |p| <= bound
// (checked exhaustively around every code transition; see fused_kernel.cc). False also when the
// check would cost more than it could save.
bool FloatAdcIsExact(double step, AdcRange range, int64_t bound);

// One conversion through the non-ideal model (shared by every variant, so results agree).
inline int NonIdealCode(const FusedLayer::Packed& L, int64_t p, int g, int o, int conv,
                        int plane, uint64_t sample, bool* saturated);

// StandardNormal(keys[i]) (noise.h) for 8 keys, each well within kStandardNormalEstimateError
// (5.6e-15 at worst on the kernel test's keys): Box-Muller on the same uniforms with polynomial
// log and cos on AVX2 (fused_kernel_avx2.cc). Only on CPUs with AVX2 and FMA.
void StandardNormalEstimates8(const uint64_t keys[8], double out[8]);

void RunScalarRows(const FusedLayer::Packed& L, const runtime::InputBatch& in, int m_begin,
                   int m_end, int32_t* sums, int64_t* saturations);
void RunAvx2Block(const KernelCall& call, int v_begin, int v_end, int b_begin, int b_end,
                  int64_t* saturations);
void RunAvx512Block(const KernelCall& call, int v_begin, int v_end, int b_begin, int b_end,
                    int64_t* saturations);

// The loops every SIMD variant shares. `Isa` provides
//   template <int MB, int NB, bool kDiff, AdcPath kAdc>
//   static void Tile(const KernelCall&, int v0, int b, int64_t*)
// (MB virtual rows from v0 by the NB output blocks from b, all row groups),
// static int RowsPerTile(const Packed&), static int BlocksPerTile(const Packed&) (1 or 2) and
// static constexpr int kMaxBlocksPerTile.
template <class Isa>
struct BlockDriver {
  template <int NB, bool kDiff, AdcPath kAdc>
  static void TileN(int mb, const KernelCall& call, int v0, int b, int64_t* sat) {
    switch (mb) {
      case 1: return Isa::template Tile<1, NB, kDiff, kAdc>(call, v0, b, sat);
      case 2: return Isa::template Tile<2, NB, kDiff, kAdc>(call, v0, b, sat);
      case 3: return Isa::template Tile<3, NB, kDiff, kAdc>(call, v0, b, sat);
      case 4: return Isa::template Tile<4, NB, kDiff, kAdc>(call, v0, b, sat);
      case 5: return Isa::template Tile<5, NB, kDiff, kAdc>(call, v0, b, sat);
      case 6: return Isa::template Tile<6, NB, kDiff, kAdc>(call, v0, b, sat);
      case 7: return Isa::template Tile<7, NB, kDiff, kAdc>(call, v0, b, sat);
      case 8: return Isa::template Tile<8, NB, kDiff, kAdc>(call, v0, b, sat);
    }
    __builtin_trap();
  }

  template <bool kDiff, AdcPath kAdc>
  static void TileNB(int mb, int nb, const KernelCall& call, int v0, int b, int64_t* sat) {
    if constexpr (!kDiff && Isa::kMaxBlocksPerTile >= 2) {
      if (nb == 2) return TileN<2, kDiff, kAdc>(mb, call, v0, b, sat);
    }
    TileN<1, kDiff, kAdc>(mb, call, v0, b, sat);
  }

  template <bool kDiff>
  static void TileAdc(int mb, int nb, const KernelCall& call, int v0, int b, int64_t* sat) {
    const FusedLayer::Packed& L = *call.layer;
    if (!L.ideal) return TileNB<kDiff, AdcPath::kNonIdeal>(mb, nb, call, v0, b, sat);
    if (L.float_adc_exact) return TileNB<kDiff, AdcPath::kFloatExact>(mb, nb, call, v0, b, sat);
    TileNB<kDiff, AdcPath::kTieChecked>(mb, nb, call, v0, b, sat);
  }

  static void Run(const KernelCall& call, int v_begin, int v_end, int b_begin, int b_end,
                  int64_t* saturations) {
    const FusedLayer::Packed& L = *call.layer;
    const bool diff = L.scheme == runtime::Scheme::kDifferential;
    const int mb = Isa::RowsPerTile(L);
    const int nb_max = diff ? 1 : Isa::BlocksPerTile(L);
    auto run = [&](int rows, int v, int b, int nb) {
      diff ? TileAdc<true>(rows, nb, call, v, b, saturations)
           : TileAdc<false>(rows, nb, call, v, b, saturations);
    };
    // Output blocks outermost: their packed weights (K x lanes bytes each) stay in L1 while the
    // rows of the chunk stream past them.
    for (int b = b_begin; b < b_end;) {
      const int nb = std::min(nb_max, b_end - b);
      int v = v_begin;
      for (; v + mb <= v_end; v += mb) run(mb, v, b, nb);
      if (v < v_end) run(v_end - v, v, b, nb);
      b += nb;
    }
  }
};

}  // namespace pim::sim

#include "pim/sim/noise.h"

namespace pim::sim {

inline int NonIdealCode(const FusedLayer::Packed& L, int64_t p, int g, int o, int conv, int plane,
                        uint64_t sample, bool* saturated) {
  const AdcPort& port = L.Port(g, o, conv);
  const uint64_t key = SampleNoiseKey(port.noise_keys[plane], sample);
  return port.curve->Convert(p, L.step, L.range, key, saturated);
}

}  // namespace pim::sim
