// AVX2 variant of the fused kernel: vpmaddubsw (u8 x s8 -> pairs in int16), int16 accumulation
// for as many steps as the layer's exactness bound allows, vpmaddwd to widen, ADC in float with an
// exact tie test (near a tie: the double rule, vectorized), running sums in registers across
// row groups.
//
// Compiled with the baseline flags; only the functions below carry target("avx2,fma"), so no
// AVX2 instruction can leak into code shared with other translation units (inline functions of
// headers are compiled for the baseline), and the binary runs on any x86-64.

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "fused_kernel_internal.h"

#define PIM_AVX2 __attribute__((target("avx2,fma")))
#define PIM_AVX2_INLINE __attribute__((target("avx2,fma"), always_inline)) inline

namespace pim::sim {
namespace {

using Packed = FusedLayer::Packed;

// A lane whose float estimate a of p / step lies within this distance of a rounding tie takes
// the exact double path. |a - fl64(p / step)| <= |p / step| * 2^-23 (one float rounding of 1/step
// and one of the product) <= (2^11 + 1) * 2^-23 < 2^-9 for the <= 12-bit codes that reach the test
// (a is clamped to [lo - 1, hi + 1] first), so outside the band a and fl64(p / step) round alike.
constexpr float kTieBand = 1.0f / 512.0f;

struct AdcConsts {
  __m256 inv, lo_m1, hi_p1, lo, hi, tie, absmask;
  __m256d step_d, lo_d, hi_d;
};

PIM_AVX2_INLINE AdcConsts MakeAdcConsts(const Packed& L) {
  AdcConsts k;
  k.inv = _mm256_set1_ps(float(1.0 / L.step));
  k.lo_m1 = _mm256_set1_ps(float(L.range.lo - 1));
  k.hi_p1 = _mm256_set1_ps(float(L.range.hi + 1));
  k.lo = _mm256_set1_ps(float(L.range.lo));
  k.hi = _mm256_set1_ps(float(L.range.hi));
  k.tie = _mm256_set1_ps(0.5f - kTieBand);
  k.absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  k.step_d = _mm256_set1_pd(L.step);
  k.lo_d = _mm256_set1_pd(L.range.lo);
  k.hi_d = _mm256_set1_pd(L.range.hi);
  return k;
}

// The normative rule on 4 lanes: one IEEE double division (correctly rounded, as in scalar
// code), round half to even, clamp. Counts saturations into *sat.
PIM_AVX2_INLINE __m128i ExactAdc4(__m128i p, const AdcConsts& k, int64_t* sat) {
  const __m256d q = _mm256_round_pd(_mm256_div_pd(_mm256_cvtepi32_pd(p), k.step_d),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256d off = _mm256_or_pd(_mm256_cmp_pd(q, k.lo_d, _CMP_LT_OQ), _mm256_cmp_pd(q, k.hi_d, _CMP_GT_OQ));
  *sat += __builtin_popcount(unsigned(_mm256_movemask_pd(off)));
  return _mm256_cvtpd_epi32(_mm256_min_pd(_mm256_max_pd(q, k.lo_d), k.hi_d));
}

// Ideal codes of 8 partial sums. Saturations are counted in `satacc` (+1 per saturated lane) or,
// on the exact path, in `sat_exact`. No function call on any path, so the running sums of the
// caller stay in registers.
PIM_AVX2_INLINE __m256i IdealAdc(const AdcConsts& k, __m256i p, __m256i& satacc, int64_t* sat_exact) {
  __m256 a = _mm256_mul_ps(_mm256_cvtepi32_ps(p), k.inv);
  a = _mm256_min_ps(_mm256_max_ps(a, k.lo_m1), k.hi_p1);
  __m256 r = _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 d = _mm256_and_ps(_mm256_sub_ps(a, r), k.absmask);
  if (__builtin_expect(_mm256_movemask_ps(_mm256_cmp_ps(d, k.tie, _CMP_GT_OQ)) != 0, 0)) {
    const __m128i lo = ExactAdc4(_mm256_castsi256_si128(p), k, sat_exact);
    const __m128i hi = ExactAdc4(_mm256_extracti128_si256(p, 1), k, sat_exact);
    return _mm256_set_m128i(hi, lo);
  }
  const __m256 sat = _mm256_or_ps(_mm256_cmp_ps(r, k.lo, _CMP_LT_OQ), _mm256_cmp_ps(r, k.hi, _CMP_GT_OQ));
  satacc = _mm256_sub_epi32(satacc, _mm256_castps_si256(sat));
  r = _mm256_min_ps(_mm256_max_ps(r, k.lo), k.hi);
  return _mm256_cvtps_epi32(r);
}

// Non-ideal codes of 8 partial sums (outputs o0..o0+7 of row group g, conversion column conv).
PIM_AVX2_INLINE __m256i NonIdealAdc(const Packed& L, __m256i p, int g, int o0, int conv, int plane,
                                    uint64_t sample, int64_t* sat) {
  alignas(32) int32_t pv[8];
  alignas(32) int32_t cv[8] = {};
  _mm256_store_si256(reinterpret_cast<__m256i*>(pv), p);
  const int n = std::min(8, L.out_channels - o0);
  for (int i = 0; i < n; ++i) {
    bool s = false;
    cv[i] = NonIdealCode(L, pv[i], g, o0 + i, conv, plane, sample, &s);
    *sat += s;
  }
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(cv));
}

PIM_AVX2_INLINE int64_t HorizontalSum(__m256i v) {
  alignas(32) int32_t t[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(t), v);
  int64_t s = 0;
  for (int i = 0; i < 8; ++i) s += t[i];
  return s;
}

// MB virtual input rows [v0, v0 + MB) by the 8 outputs of block b, over all row groups.
template <int MB, bool kDiff, bool kIdeal>
PIM_AVX2 void TileImpl(const KernelCall& call, int v0, int b, int64_t* sat) {
  const Packed& L = *call.layer;
  const int G = L.groups, steps = L.steps, F = L.flush_steps, P = L.planes;
  const size_t row_bytes = size_t(G) * L.padded_rows;
  const uint8_t* x0 = call.xp + size_t(v0) * row_bytes;
  constexpr int kWeightBytes = kDiff ? 64 : 32;
  const int8_t* wb = L.w.data() + size_t(b) * G * steps * kWeightBytes;
  const __m256i ones = _mm256_set1_epi16(1);
  const AdcConsts k = MakeAdcConsts(L);
  __m256i satacc = _mm256_setzero_si256();

  __m256i S[MB];
  for (int m = 0; m < MB; ++m) S[m] = _mm256_setzero_si256();

  for (int g = 0; g < G; ++g) {
    const uint8_t* xg = x0 + size_t(g) * L.padded_rows;
    const int8_t* w = wb + size_t(g) * steps * kWeightBytes;
    // A short last group (K not a multiple of R) stops at its own rows: the steps past them hold
    // zero inputs and zero weights, so skipping them changes no sum.
    const int group_steps = std::min(steps, (L.reduction - g * L.rows + 3) / 4);
    __m256i Pp[MB], Pn[MB];
    for (int m = 0; m < MB; ++m) Pp[m] = Pn[m] = _mm256_setzero_si256();
    for (int s0 = 0; s0 < group_steps; s0 += F) {
      const int s1 = std::min(group_steps, s0 + F);
      __m256i Ap[MB], An[MB];
      for (int m = 0; m < MB; ++m) Ap[m] = An[m] = _mm256_setzero_si256();
      for (int s = s0; s < s1; ++s) {
        const __m256i wp = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
        const __m256i wn = kDiff ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 32)) : wp;
        w += kWeightBytes;
        for (int m = 0; m < MB; ++m) {
          int32_t xv;
          std::memcpy(&xv, xg + m * row_bytes + size_t(s) * 4, 4);
          const __m256i xb = _mm256_set1_epi32(xv);
          Ap[m] = _mm256_add_epi16(Ap[m], _mm256_maddubs_epi16(xb, wp));
          if constexpr (kDiff) An[m] = _mm256_add_epi16(An[m], _mm256_maddubs_epi16(xb, wn));
        }
      }
      for (int m = 0; m < MB; ++m) {
        Pp[m] = _mm256_add_epi32(Pp[m], _mm256_madd_epi16(Ap[m], ones));
        if constexpr (kDiff) Pn[m] = _mm256_add_epi32(Pn[m], _mm256_madd_epi16(An[m], ones));
      }
    }
    for (int m = 0; m < MB; ++m) {
      if constexpr (kIdeal) {
        S[m] = _mm256_add_epi32(S[m], IdealAdc(k, Pp[m], satacc, sat));
        if constexpr (kDiff) S[m] = _mm256_sub_epi32(S[m], IdealAdc(k, Pn[m], satacc, sat));
      } else {
        const int v = v0 + m;
        const uint64_t sample = call.first_sample + uint64_t(v / P);
        S[m] = _mm256_add_epi32(S[m], NonIdealAdc(L, Pp[m], g, b * 8, 0, v % P, sample, sat));
        if constexpr (kDiff) S[m] = _mm256_sub_epi32(S[m], NonIdealAdc(L, Pn[m], g, b * 8, 1, 0, sample, sat));
      }
    }
  }
  *sat += HorizontalSum(satacc);  // each saturated lane subtracted a -1 mask

  // Store; bit_serial combines the planes of one sample: S = sum_j 2^j S_j.
  const int O = L.out_channels, o0 = b * 8, valid = std::min(8, O - o0);
  for (int t = 0; t < MB / P; ++t) {
    __m256i acc = S[t * P];
    for (int j = 1; j < P; ++j) acc = _mm256_add_epi32(acc, _mm256_sll_epi32(S[t * P + j], _mm_cvtsi32_si128(j)));
    int32_t* dst = call.sums + size_t((v0 + t * P) / P) * O + o0;
    if (valid == 8) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), acc);
    } else {
      alignas(32) int32_t tmp[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), acc);
      std::copy(tmp, tmp + valid, dst);
    }
  }
}

// Rows per micro-tile: a multiple of the planes of one sample, sized so that the int16
// accumulators, running sums, one weight vector and the broadcast fit the 16 ymm registers.
int RowsPerTileImpl(const Packed& L) {
  if (L.scheme == runtime::Scheme::kDifferential) return 2;
  const int P = L.planes;
  if (P == 1 || P == 2) return 4;
  return P;  // 3..8
}

struct Avx2 {
  template <int MB, bool kDiff, bool kIdeal>
  static void Tile(const KernelCall& call, int v0, int b, int64_t* sat) {
    TileImpl<MB, kDiff, kIdeal>(call, v0, b, sat);
  }
  static int RowsPerTile(const Packed& L) { return RowsPerTileImpl(L); }
};

}  // namespace

void RunAvx2Block(const KernelCall& call, int v_begin, int v_end, int b_begin, int b_end,
                  int64_t* saturations) {
  BlockDriver<Avx2>::Run(call, v_begin, v_end, b_begin, b_end, saturations);
}

}  // namespace pim::sim
