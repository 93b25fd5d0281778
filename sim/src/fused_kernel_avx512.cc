// AVX-512 VNNI variant of the fused kernel: vpdpbusd accumulates 4 u8 x s8 products per int32
// lane (no int16 stage, no saturation), 16 outputs per zmm register, ADC in float with the same
// exact tie test as the AVX2 variant, masked stores for the tail.
//
// NOT EXERCISED ON THE DEVELOPMENT MACHINE (an AMD Zen 3 without AVX-512): it compiles here and
// is selected at run time only where __builtin_cpu_supports reports avx512f/bw/vl/vnni; its unit
// test (fused_kernel_test) runs it bit-exact against the scalar reference when the CPU has it and
// skips otherwise. Only the functions below carry the target attribute (see fused_kernel_avx2.cc).
//
// AMX is not implemented: a 64-row group is exactly one AMX tile depth (TDPBUSD, K = 64 bytes),
// so the natural mapping is one tile multiply per row group with the ADC applied on the int32
// result tile; without hardware to test on it was left out.

// GCC 12 reports -Wmaybe-uninitialized inside its own avx512fintrin.h (_mm512_undefined_*).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "fused_kernel_internal.h"

#define PIM_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define PIM_AVX512_INLINE \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"), always_inline)) inline

namespace pim::sim {
namespace {

using Packed = FusedLayer::Packed;

constexpr float kTieBand = 1.0f / 512.0f;  // see fused_kernel_avx2.cc

struct AdcConsts {
  __m512 inv, lo_m1, hi_p1, lo, hi, tie;
  __m512d step_d, lo_d, hi_d;
};

PIM_AVX512_INLINE AdcConsts MakeAdcConsts(const Packed& L) {
  AdcConsts k;
  k.inv = _mm512_set1_ps(L.inv_step);
  k.lo_m1 = _mm512_set1_ps(float(L.range.lo - 1));
  k.hi_p1 = _mm512_set1_ps(float(L.range.hi + 1));
  k.lo = _mm512_set1_ps(float(L.range.lo));
  k.hi = _mm512_set1_ps(float(L.range.hi));
  k.tie = _mm512_set1_ps(0.5f - kTieBand);
  k.step_d = _mm512_set1_pd(L.step);
  k.lo_d = _mm512_set1_pd(L.range.lo);
  k.hi_d = _mm512_set1_pd(L.range.hi);
  return k;
}

// The normative rule on 8 lanes (one double division, rne, clamp), see fused_kernel_avx2.cc.
PIM_AVX512_INLINE __m256i ExactAdc8(__m256i p, const AdcConsts& k, int64_t* sat) {
  const __m512d q = _mm512_roundscale_pd(_mm512_div_pd(_mm512_cvtepi32_pd(p), k.step_d),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __mmask8 off = _mm512_cmp_pd_mask(q, k.lo_d, _CMP_LT_OQ) | _mm512_cmp_pd_mask(q, k.hi_d, _CMP_GT_OQ);
  *sat += __builtin_popcount(unsigned(off));
  return _mm512_cvtpd_epi32(_mm512_min_pd(_mm512_max_pd(q, k.lo_d), k.hi_d));
}

PIM_AVX512_INLINE __m512i IdealAdc(const AdcConsts& k, __m512i p, int64_t* sat) {
  __m512 a = _mm512_mul_ps(_mm512_cvtepi32_ps(p), k.inv);
  a = _mm512_min_ps(_mm512_max_ps(a, k.lo_m1), k.hi_p1);
  __m512 r = _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 d = _mm512_abs_ps(_mm512_sub_ps(a, r));
  if (__builtin_expect(_mm512_cmp_ps_mask(d, k.tie, _CMP_GT_OQ) != 0, 0)) {
    const __m256i lo = ExactAdc8(_mm512_castsi512_si256(p), k, sat);
    const __m256i hi = ExactAdc8(_mm512_extracti64x4_epi64(p, 1), k, sat);
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  }
  const __mmask16 s = _mm512_cmp_ps_mask(r, k.lo, _CMP_LT_OQ) | _mm512_cmp_ps_mask(r, k.hi, _CMP_GT_OQ);
  *sat += __builtin_popcount(unsigned(s));
  r = _mm512_min_ps(_mm512_max_ps(r, k.lo), k.hi);
  return _mm512_cvtps_epi32(r);
}

PIM_AVX512_INLINE __m512i NonIdealAdc(const Packed& L, __m512i p, int g, int o0, int conv, int plane,
                                      uint64_t sample, int64_t* sat) {
  alignas(64) int32_t pv[16];
  alignas(64) int32_t cv[16] = {};
  _mm512_store_si512(pv, p);
  const int n = std::min(16, L.out_channels - o0);
  for (int i = 0; i < n; ++i) {
    bool s = false;
    cv[i] = NonIdealCode(L, pv[i], g, o0 + i, conv, plane, sample, &s);
    *sat += s;
  }
  return _mm512_load_si512(cv);
}

template <int MB, bool kDiff, bool kIdeal>
PIM_AVX512 void TileImpl(const KernelCall& call, int v0, int b, int64_t* sat) {
  const Packed& L = *call.layer;
  const int G = L.groups, steps = L.steps, P = L.planes;
  const size_t stride = call.row_stride;
  const uint8_t* x0 = call.x + size_t(v0 - call.v_base) * stride;
  constexpr int kWeightBytes = kDiff ? 128 : 64;
  const int8_t* wb = L.w.data() + size_t(b) * G * steps * kWeightBytes;
  const AdcConsts k = MakeAdcConsts(L);

  __m512i S[MB];
  for (int m = 0; m < MB; ++m) S[m] = _mm512_setzero_si512();
  for (int g = 0; g < G; ++g) {
    const uint8_t* xg = x0 + size_t(g) * call.group_stride;
    const int8_t* w = wb + size_t(g) * steps * kWeightBytes;
    // A short last group reads only its own rows (see KernelCall).
    const int group_steps = std::min(steps, (L.reduction - g * L.rows + 3) / 4);
    __m512i Pp[MB], Pn[MB];
    for (int m = 0; m < MB; ++m) Pp[m] = Pn[m] = _mm512_setzero_si512();
    for (int s = 0; s < group_steps; ++s) {
      const __m512i wp = _mm512_loadu_si512(w);
      const __m512i wn = kDiff ? _mm512_loadu_si512(w + 64) : wp;
      w += kWeightBytes;
      for (int m = 0; m < MB; ++m) {
        int32_t xv;
        std::memcpy(&xv, xg + m * stride + size_t(s) * 4, 4);
        const __m512i xb = _mm512_set1_epi32(xv);
        Pp[m] = _mm512_dpbusd_epi32(Pp[m], xb, wp);
        if constexpr (kDiff) Pn[m] = _mm512_dpbusd_epi32(Pn[m], xb, wn);
      }
    }
    for (int m = 0; m < MB; ++m) {
      if constexpr (kIdeal) {
        S[m] = _mm512_add_epi32(S[m], IdealAdc(k, Pp[m], sat));
        if constexpr (kDiff) S[m] = _mm512_sub_epi32(S[m], IdealAdc(k, Pn[m], sat));
      } else {
        const int v = v0 + m;
        const uint64_t sample = call.first_sample + uint64_t(v / P);
        S[m] = _mm512_add_epi32(S[m], NonIdealAdc(L, Pp[m], g, b * 16, 0, v % P, sample, sat));
        if constexpr (kDiff) S[m] = _mm512_sub_epi32(S[m], NonIdealAdc(L, Pn[m], g, b * 16, 1, 0, sample, sat));
      }
    }
  }

  const int O = L.out_channels, o0 = b * 16, valid = std::min(16, O - o0);
  const __mmask16 mask = valid == 16 ? __mmask16(0xffff) : __mmask16((1u << valid) - 1);
  for (int t = 0; t < MB / P; ++t) {
    __m512i acc = S[t * P];
    for (int j = 1; j < P; ++j) acc = _mm512_add_epi32(acc, _mm512_sll_epi32(S[t * P + j], _mm_cvtsi32_si128(j)));
    int32_t* dst = call.sums + size_t((v0 + t * P) / P) * O + o0;
    _mm512_mask_storeu_epi32(dst, mask, acc);
  }
}

// 32 zmm registers: 8 rows of accumulators plus running sums fit (differential: 4 rows).
int RowsPerTileImpl(const Packed& L) {
  if (L.scheme == runtime::Scheme::kDifferential) return 4;
  const int P = L.planes;
  return P <= 8 ? (8 / P) * P : P;
}

// One 16-output block per micro-tile; the ideal ADC always takes the tie-checked path (the float
// estimate's verification, Packed::float_adc_exact, is used by the AVX2 variant only).
struct Avx512 {
  static constexpr int kMaxBlocksPerTile = 1;
  template <int MB, int NB, bool kDiff, AdcPath kAdc>
  static void Tile(const KernelCall& call, int v0, int b, int64_t* sat) {
    static_assert(NB == 1);
    TileImpl<MB, kDiff, kAdc != AdcPath::kNonIdeal>(call, v0, b, sat);
  }
  static int RowsPerTile(const Packed& L) { return RowsPerTileImpl(L); }
  static int BlocksPerTile(const Packed&) { return 1; }
};

}  // namespace

void RunAvx512Block(const KernelCall& call, int v_begin, int v_end, int b_begin, int b_end,
                  int64_t* saturations) {
  BlockDriver<Avx512>::Run(call, v_begin, v_end, b_begin, b_end, saturations);
}

}  // namespace pim::sim
