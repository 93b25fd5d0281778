// AVX2 variant of the fused kernel: vpmaddubsw (u8 x s8 -> pairs in int16), int16 accumulation
// for as many steps as the layer's exactness bound allows, vpmaddwd to widen, ADC in float
// (verified exact for the layer at Create, or with an exact tie test: near a tie the double rule,
// vectorized), running sums in registers across row groups. A micro-tile is 4 input rows by two
// 8-output blocks, so each broadcast input feeds two multiplies.
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
  __m256i sat_below, sat_above;
};

PIM_AVX2_INLINE AdcConsts MakeAdcConsts(const Packed& L) {
  AdcConsts k;
  k.inv = _mm256_set1_ps(L.inv_step);
  k.lo_m1 = _mm256_set1_ps(float(L.range.lo - 1));
  k.hi_p1 = _mm256_set1_ps(float(L.range.hi + 1));
  k.lo = _mm256_set1_ps(float(L.range.lo));
  k.hi = _mm256_set1_ps(float(L.range.hi));
  k.tie = _mm256_set1_ps(0.5f - kTieBand);
  k.absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  k.step_d = _mm256_set1_pd(L.step);
  k.lo_d = _mm256_set1_pd(L.range.lo);
  k.hi_d = _mm256_set1_pd(L.range.hi);
  k.sat_below = _mm256_set1_epi32(L.sat_below);
  k.sat_above = _mm256_set1_epi32(L.sat_above);
  return k;
}

// The verified float estimate (FloatAdcCode on 8 lanes); saturations against the exact integer
// bounds, +1 per saturated lane in `satacc` (each compare mask is -1).
PIM_AVX2_INLINE __m256i FloatExactAdc(const AdcConsts& k, __m256i p, __m256i& satacc) {
  __m256 a = _mm256_mul_ps(_mm256_cvtepi32_ps(p), k.inv);
  a = _mm256_min_ps(_mm256_max_ps(a, k.lo), k.hi);
  const __m256i code = _mm256_cvtps_epi32(_mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  satacc = _mm256_sub_epi32(satacc, _mm256_cmpgt_epi32(k.sat_below, p));
  satacc = _mm256_sub_epi32(satacc, _mm256_cmpgt_epi32(p, k.sat_above));
  return code;
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

// Ideal codes of 8 partial sums for layers whose float estimate is not verified: the estimate
// with a tie test, lanes near a tie through the double rule. Saturations are counted in `satacc`
// (+1 per saturated lane) or, on the exact path, in `sat_exact`.
PIM_AVX2_INLINE __m256i TieCheckedAdc(const AdcConsts& k, __m256i p, __m256i& satacc, int64_t* sat_exact) {
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

// ln x on 4 lanes of positive normal doubles: x = m 2^e with m in [sqrt(1/2), sqrt(2)),
// ln m = 2 atanh(t), t = (m - 1) / (m + 1), |t| <= 0.1716, by its odd series to t^17 (the next
// term is below 4e-16 of the result). Relative error a few ulps near x = 1, where ln x is small.
PIM_AVX2_INLINE __m256d Log4(__m256d x) {
  const __m256i bits = _mm256_castpd_si256(x);
  const __m256d two52 = _mm256_set1_pd(0x1.0p52);
  // The biased exponent (0..2047) as a double: its bits as the low mantissa bits of 2^52.
  __m256d e = _mm256_sub_pd(
      _mm256_castsi256_pd(_mm256_or_si256(_mm256_srli_epi64(bits, 52), _mm256_castpd_si256(two52))), two52);
  e = _mm256_sub_pd(e, _mm256_set1_pd(1023.0));
  __m256d m = _mm256_castsi256_pd(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi64x(0x000fffffffffffffLL)),
                                                  _mm256_set1_epi64x(0x3ff0000000000000LL)));
  const __m256d high = _mm256_cmp_pd(m, _mm256_set1_pd(1.4142135623730951), _CMP_GT_OQ);
  m = _mm256_blendv_pd(m, _mm256_mul_pd(m, _mm256_set1_pd(0.5)), high);
  e = _mm256_add_pd(e, _mm256_and_pd(high, _mm256_set1_pd(1.0)));
  const __m256d one = _mm256_set1_pd(1.0);
  const __m256d t = _mm256_div_pd(_mm256_sub_pd(m, one), _mm256_add_pd(m, one));
  const __m256d t2 = _mm256_mul_pd(t, t);
  __m256d s = _mm256_set1_pd(1.0 / 17);
  for (int k = 15; k >= 3; k -= 2) s = _mm256_fmadd_pd(s, t2, _mm256_set1_pd(1.0 / k));
  s = _mm256_mul_pd(s, t2);  // t^2/3 + t^4/5 + ... + t^16/17
  const __m256d two_t = _mm256_add_pd(t, t);
  return _mm256_fmadd_pd(e, _mm256_set1_pd(0.6931471805599453), _mm256_fmadd_pd(two_t, s, two_t));
}

// cos(2 pi u) on 4 lanes, u in [0, 1]: reduced exactly (Sterbenz) to a in [0, 1/4] by
// cos(2 pi u) = cos(2 pi (1 - u)) and cos(2 pi a) = -cos(2 pi (1/2 - a)); x = 2 pi a in [0, pi/2]
// by the nested Taylor series 1 - x^2/(1*2) (1 - x^2/(3*4) (...)) through x^22 (the next term is
// below 1e-19). Absolute error a few ulps of 1.
PIM_AVX2_INLINE __m256d CosTwoPi4(__m256d u) {
  const __m256d half = _mm256_set1_pd(0.5);
  __m256d a = _mm256_blendv_pd(u, _mm256_sub_pd(_mm256_set1_pd(1.0), u), _mm256_cmp_pd(u, half, _CMP_GT_OQ));
  const __m256d flip = _mm256_cmp_pd(a, _mm256_set1_pd(0.25), _CMP_GT_OQ);
  a = _mm256_blendv_pd(a, _mm256_sub_pd(half, a), flip);
  const __m256d x = _mm256_mul_pd(a, _mm256_set1_pd(6.283185307179586));
  const __m256d x2 = _mm256_mul_pd(x, x);
  const __m256d one = _mm256_set1_pd(1.0);
  __m256d c = one;
  for (int k = 21; k >= 1; k -= 2) {
    c = _mm256_fnmadd_pd(_mm256_mul_pd(x2, _mm256_set1_pd(1.0 / (k * (k + 1)))), c, one);
  }
  return _mm256_xor_pd(c, _mm256_and_pd(flip, _mm256_set1_pd(-0.0)));
}

// Non-ideal codes of 8 partial sums (outputs o0..o0+7 of row group g, conversion column conv):
// the 8 noise deviates are estimated together (Box-Muller on StandardNormal's uniforms through
// Log4 and CosTwoPi4), each conversion then decided by ConvertWithEstimate, which equals the
// scalar path's NonIdealCode for every lane.
PIM_AVX2_INLINE __m256i NonIdealAdc(const Packed& L, __m256i p, int g, int o0, int conv, int plane,
                                    uint64_t sample, int64_t* sat) {
  alignas(32) int32_t pv[8];
  alignas(32) int32_t cv[8] = {};
  alignas(32) uint64_t keys[8];
  alignas(32) double estimate[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(pv), p);
  const int n = std::min(8, L.out_channels - o0);
  if (!L.noisy) {  // no curve draws noise: nothing to estimate
    for (int i = 0; i < n; ++i) {
      bool s = false;
      cv[i] = L.Port(g, o0 + i, conv).curve->Convert(pv[i], L.step, L.range, 0, &s);
      *sat += s;
    }
    return _mm256_load_si256(reinterpret_cast<const __m256i*>(cv));
  }
  for (int i = 0; i < 8; ++i) keys[i] = SampleNoiseKey(L.Port(g, o0 + std::min(i, n - 1), conv).noise_keys[plane], sample);
  StandardNormalEstimates8(keys, estimate);
  for (int i = 0; i < n; ++i) {
    bool s = false;
    const AdcPort& port = L.Port(g, o0 + i, conv);
    cv[i] = port.curve->ConvertWithEstimate(pv[i], L.step, L.range, keys[i], estimate[i], &s);
    *sat += s;
  }
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(cv));
}

template <AdcPath kAdc>
PIM_AVX2_INLINE __m256i Convert(const KernelCall& call, const AdcConsts& k, __m256i p, int v, int g,
                                int o0, int conv, __m256i& satacc, int64_t* sat) {
  if constexpr (kAdc == AdcPath::kFloatExact) {
    return FloatExactAdc(k, p, satacc);
  } else if constexpr (kAdc == AdcPath::kTieChecked) {
    return TieCheckedAdc(k, p, satacc, sat);
  } else {
    const Packed& L = *call.layer;
    const int P = L.planes;
    const uint64_t sample = call.first_sample + uint64_t(v / P);
    return NonIdealAdc(L, p, g, o0, conv, conv == 0 ? v % P : 0, sample, sat);
  }
}

PIM_AVX2_INLINE int64_t HorizontalSum(__m256i v) {
  alignas(32) int32_t t[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(t), v);
  int64_t s = 0;
  for (int i = 0; i < 8; ++i) s += t[i];
  return s;
}

// MB virtual input rows [v0, v0 + MB) by the NB 8-output blocks from b, over all row groups.
// Per step (4 rows of the array) one broadcast of each input row feeds NB vpmaddubsw (x2 for
// differential: Qp and Qn); int16 accumulation for `flush_steps` steps, vpmaddwd to widen.
template <int MB, int NB, bool kDiff, AdcPath kAdc>
PIM_AVX2 void TileImpl(const KernelCall& call, int v0, int b, int64_t* sat) {
  static_assert(!kDiff || NB == 1, "differential tiles hold one output block (Qp and Qn)");
  const Packed& L = *call.layer;
  const int G = L.groups, steps = L.steps, F = L.flush_steps, P = L.planes;
  const size_t stride = call.row_stride;
  const uint8_t* x0 = call.x + size_t(v0 - call.v_base) * stride;
  constexpr int kWeightBytes = kDiff ? 64 : 32;
  const size_t block_bytes = size_t(G) * steps * kWeightBytes;
  const int8_t* wb = L.w.data() + size_t(b) * block_bytes;
  const __m256i ones = _mm256_set1_epi16(1);
  const AdcConsts k = MakeAdcConsts(L);
  __m256i satacc = _mm256_setzero_si256();

  __m256i S[MB][NB];
  for (int m = 0; m < MB; ++m)
    for (int n = 0; n < NB; ++n) S[m][n] = _mm256_setzero_si256();

  for (int g = 0; g < G; ++g) {
    const uint8_t* xg = x0 + size_t(g) * call.group_stride;
    const int8_t* w = wb + size_t(g) * steps * kWeightBytes;
    // A short last group (K not a multiple of R) stops at its own rows: the steps past them hold
    // zero inputs and zero weights, so skipping them changes no sum.
    const int group_steps = std::min(steps, (L.reduction - g * L.rows + 3) / 4);
    __m256i Pp[MB][NB], Pn[MB];
    for (int m = 0; m < MB; ++m) {
      for (int n = 0; n < NB; ++n) Pp[m][n] = _mm256_setzero_si256();
      Pn[m] = _mm256_setzero_si256();
    }
    for (int s0 = 0; s0 < group_steps; s0 += F) {
      const int s1 = std::min(group_steps, s0 + F);
      __m256i Ap[MB][NB], An[MB];
      for (int m = 0; m < MB; ++m) {
        for (int n = 0; n < NB; ++n) Ap[m][n] = _mm256_setzero_si256();
        An[m] = _mm256_setzero_si256();
      }
      for (int s = s0; s < s1; ++s) {
        __m256i wv[NB];
        for (int n = 0; n < NB; ++n) {
          wv[n] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + n * block_bytes));
        }
        const __m256i wn = kDiff ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 32)) : wv[0];
        w += kWeightBytes;
        for (int m = 0; m < MB; ++m) {
          int32_t xv;
          std::memcpy(&xv, xg + m * stride + size_t(s) * 4, 4);
          const __m256i xb = _mm256_set1_epi32(xv);
          for (int n = 0; n < NB; ++n) Ap[m][n] = _mm256_add_epi16(Ap[m][n], _mm256_maddubs_epi16(xb, wv[n]));
          if constexpr (kDiff) An[m] = _mm256_add_epi16(An[m], _mm256_maddubs_epi16(xb, wn));
        }
      }
      for (int m = 0; m < MB; ++m) {
        for (int n = 0; n < NB; ++n) Pp[m][n] = _mm256_add_epi32(Pp[m][n], _mm256_madd_epi16(Ap[m][n], ones));
        if constexpr (kDiff) Pn[m] = _mm256_add_epi32(Pn[m], _mm256_madd_epi16(An[m], ones));
      }
    }
    for (int m = 0; m < MB; ++m) {
      for (int n = 0; n < NB; ++n) {
        const int o0 = (b + n) * 8;
        S[m][n] = _mm256_add_epi32(S[m][n], Convert<kAdc>(call, k, Pp[m][n], v0 + m, g, o0, 0, satacc, sat));
      }
      if constexpr (kDiff) {
        S[m][0] = _mm256_sub_epi32(S[m][0], Convert<kAdc>(call, k, Pn[m], v0 + m, g, b * 8, 1, satacc, sat));
      }
    }
  }
  *sat += HorizontalSum(satacc);  // each saturated lane subtracted a -1 mask

  // Store; bit_serial combines the planes of one sample: S = sum_j 2^j S_j.
  const int O = L.out_channels;
  for (int n = 0; n < NB; ++n) {
    const int o0 = (b + n) * 8, valid = std::min(8, O - o0);
    for (int t = 0; t < MB / P; ++t) {
      __m256i acc = S[t * P][n];
      for (int j = 1; j < P; ++j) acc = _mm256_add_epi32(acc, _mm256_sll_epi32(S[t * P + j][n], _mm_cvtsi32_si128(j)));
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
}

// Rows per micro-tile: a multiple of the planes of one sample, sized so that the int16
// accumulators (MB x NB, or 2 x MB for differential), the weight vectors and the broadcast fit
// the 16 ymm registers.
int RowsPerTileImpl(const Packed& L) {
  if (L.scheme == runtime::Scheme::kDifferential) return 4;
  const int P = L.planes;
  if (P == 1 || P == 2) return 4;  // 4 x 2 blocks measured faster than 3, 5 or 6 rows
  return P;  // 3..8
}

int BlocksPerTileImpl(const Packed& L) { return RowsPerTileImpl(L) <= 4 ? 2 : 1; }

struct Avx2 {
  static constexpr int kMaxBlocksPerTile = 2;
  template <int MB, int NB, bool kDiff, AdcPath kAdc>
  static void Tile(const KernelCall& call, int v0, int b, int64_t* sat) {
    TileImpl<MB, NB, kDiff, kAdc>(call, v0, b, sat);
  }
  static int RowsPerTile(const Packed& L) { return RowsPerTileImpl(L); }
  static int BlocksPerTile(const Packed& L) { return BlocksPerTileImpl(L); }
};

}  // namespace

PIM_AVX2 void StandardNormalEstimates8(const uint64_t keys[8], double out[8]) {
  alignas(32) double u1[8], u2[8];
  for (int i = 0; i < 8; ++i) {
    u1[i] = NormalRadiusUniform(keys[i]);
    u2[i] = NormalAngleUniform(keys[i]);
  }
  for (int h = 0; h < 8; h += 4) {
    const __m256d r = _mm256_sqrt_pd(_mm256_mul_pd(_mm256_set1_pd(-2.0), Log4(_mm256_load_pd(u1 + h))));
    _mm256_storeu_pd(out + h, _mm256_mul_pd(r, CosTwoPi4(_mm256_load_pd(u2 + h))));
  }
}

void RunAvx2Block(const KernelCall& call, int v_begin, int v_end, int b_begin, int b_end,
                  int64_t* saturations) {
  BlockDriver<Avx2>::Run(call, v_begin, v_end, b_begin, b_end, saturations);
}

}  // namespace pim::sim
