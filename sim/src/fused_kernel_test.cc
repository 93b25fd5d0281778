#include "pim/sim/fused_kernel.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fused_kernel_internal.h"

namespace pim::sim {
namespace {

using runtime::Scheme;

struct Case {
  Scheme scheme = Scheme::kNative;
  int out = 8, k = 64, rows = 64, adc_bits = 7, input_bits = 4, weight_bits = 4, vectors = 5;
  double step = 0;  // 0: full-range rule
};

std::string Describe(const Case& c) {
  return absl::StrCat(runtime::SchemeName(c.scheme), " O=", c.out, " K=", c.k, " R=", c.rows,
                      " b=", c.adc_bits, " ba=", c.input_bits, " bw=", c.weight_bits, " M=", c.vectors,
                      " step=", c.step);
}

// The full-range rule of docs/onnx-convention.md 3.2.
double FullRangeStep(const runtime::LayerMapping& l) {
  const bool bs = l.scheme == Scheme::kBitSerial;
  const double x_top = bs ? 1 : (1 << l.input_bits) - 1;
  const double code_max = l.scheme == Scheme::kDifferential ? (1 << l.adc_bits) - 1 : (1 << (l.adc_bits - 1)) - 1;
  double p_max = 0;
  for (int o = 0; o < l.out_channels; ++o) {
    for (int k0 = 0; k0 < l.reduction; k0 += l.rows) {
      double pos = 0, neg = 0;
      for (int k = k0; k < std::min(l.reduction, k0 + l.rows); ++k) {
        const int q = l.weight_codes[size_t(o) * l.reduction + k];
        pos += std::max(q, 0);
        neg += std::max(-q, 0);
      }
      p_max = std::max(p_max, std::max(pos, neg) * x_top);
    }
  }
  // A signed 1-bit ADC has code_max 0; the rule is undefined there, use 1 code.
  return p_max == 0 ? 1.0 : p_max / std::max(code_max, 1.0);
}

runtime::LayerMapping MakeLayer(const Case& c, std::mt19937& rng) {
  runtime::LayerMapping l;
  l.name = "test";
  l.out_channels = c.out;
  l.reduction = c.k;
  l.scheme = c.scheme;
  l.rows = c.rows;
  l.adc_bits = c.adc_bits;
  l.input_bits = c.input_bits;
  l.weight_bits = c.weight_bits;
  const int qmax = (1 << (c.weight_bits - 1)) - 1;
  std::uniform_int_distribution<int> q(-qmax, qmax);
  l.weight_codes.resize(size_t(c.out) * c.k);
  for (auto& v : l.weight_codes) v = int8_t(q(rng));
  l.adc_step = c.step > 0 ? c.step : FullRangeStep(l);
  return l;
}

std::vector<uint8_t> MakeInputs(const Case& c, std::mt19937& rng) {
  std::uniform_int_distribution<int> x(0, (1 << c.input_bits) - 1);
  std::vector<uint8_t> v(size_t(c.vectors) * c.k);
  for (auto& e : v) e = uint8_t(x(rng));
  return v;
}

// docs/onnx-convention.md 3.1 written independently of the kernel (ideal ADC).
std::vector<int32_t> Naive(const runtime::LayerMapping& l, const std::vector<uint8_t>& x, int m_count) {
  const int O = l.out_channels, K = l.reduction, R = l.rows;
  const bool diff = l.scheme == Scheme::kDifferential;
  const int lo = diff ? 0 : -(1 << (l.adc_bits - 1));
  const int hi = diff ? (1 << l.adc_bits) - 1 : (1 << (l.adc_bits - 1)) - 1;
  auto adc = [&](long p) {
    double c = std::nearbyint(double(p) / l.adc_step);
    return int(std::min<double>(hi, std::max<double>(lo, c)));
  };
  std::vector<int32_t> s(size_t(m_count) * O);
  for (int m = 0; m < m_count; ++m) {
    for (int o = 0; o < O; ++o) {
      long acc = 0;
      for (int k0 = 0; k0 < K; k0 += R) {
        const int k1 = std::min(K, k0 + R);
        if (l.scheme == Scheme::kNative) {
          long p = 0;
          for (int k = k0; k < k1; ++k) p += l.weight_codes[size_t(o) * K + k] * x[size_t(m) * K + k];
          acc += adc(p);
        } else if (diff) {
          long pp = 0, pn = 0;
          for (int k = k0; k < k1; ++k) {
            const int q = l.weight_codes[size_t(o) * K + k];
            pp += std::max(q, 0) * x[size_t(m) * K + k];
            pn += std::max(-q, 0) * x[size_t(m) * K + k];
          }
          acc += adc(pp) - adc(pn);
        } else {
          for (int j = 0; j < l.input_bits; ++j) {
            long p = 0;
            for (int k = k0; k < k1; ++k) p += l.weight_codes[size_t(o) * K + k] * ((x[size_t(m) * K + k] >> j) & 1);
            acc += long(adc(p)) << j;
          }
        }
      }
      s[size_t(m) * O + o] = int32_t(acc);
    }
  }
  return s;
}

struct Result {
  std::vector<int32_t> sums;
  KernelStats stats;
};

Result RunWith(const runtime::LayerMapping& l, const AdcModel* adc, KernelIsa isa, int threads,
               const std::vector<uint8_t>& x, int vectors, int batch = 0) {
  FusedKernelOptions opt;
  opt.isa = isa;
  opt.threads = threads;
  auto layer = FusedLayer::Create(l, adc, opt);
  EXPECT_TRUE(layer.ok()) << layer.status();
  Result r;
  r.sums.assign(size_t(vectors) * l.out_channels, -999);
  if (!layer.ok()) return r;
  if (batch <= 0) batch = vectors;
  for (int m0 = 0; m0 < vectors; m0 += batch) {
    const int n = std::min(batch, vectors - m0);
    runtime::InputBatch in{x.data() + size_t(m0) * l.reduction, n, l.reduction, l.input_bits, uint64_t(m0)};
    absl::Status s = (*layer)->Run(in, absl::MakeSpan(r.sums).subspan(size_t(m0) * l.out_channels, size_t(n) * l.out_channels), &r.stats);
    EXPECT_TRUE(s.ok()) << s;
  }
  return r;
}

std::vector<KernelIsa> SimdIsas() {
  std::vector<KernelIsa> isas;
  for (KernelIsa isa : {KernelIsa::kAvx2, KernelIsa::kAvx512Vnni}) {
    if (KernelIsaSupported(isa)) isas.push_back(isa);
  }
  return isas;
}

void ExpectAllIsasAgree(const Case& c, uint32_t seed) {
  std::mt19937 rng(seed);
  const runtime::LayerMapping l = MakeLayer(c, rng);
  const std::vector<uint8_t> x = MakeInputs(c, rng);
  const Result ref = RunWith(l, nullptr, KernelIsa::kScalar, 1, x, c.vectors);
  ASSERT_EQ(ref.sums, Naive(l, x, c.vectors)) << Describe(c);
  for (KernelIsa isa : SimdIsas()) {
    const Result r = RunWith(l, nullptr, isa, 2, x, c.vectors);
    ASSERT_EQ(r.sums, ref.sums) << KernelIsaName(isa) << " " << Describe(c);
    EXPECT_EQ(r.stats.saturations, ref.stats.saturations) << KernelIsaName(isa) << " " << Describe(c);
    EXPECT_EQ(r.stats.conversions, ref.stats.conversions);
    EXPECT_EQ(r.stats.macs, ref.stats.macs);
  }
}

TEST(FusedKernel, ScalarReferenceMatchesDesignRuleOnSmallLayer) {
  Case c;
  c.out = 3;
  c.k = 10;
  c.rows = 4;
  c.adc_bits = 3;
  ExpectAllIsasAgree(c, 1);
}

TEST(FusedKernel, BitExactForEverySchemeAdcBitsAndRows) {
  uint32_t seed = 100;
  for (Scheme scheme : {Scheme::kNative, Scheme::kDifferential, Scheme::kBitSerial}) {
    for (int bits = 1; bits <= 7; ++bits) {
      for (int rows : {1, 3, 8, 61, 64}) {
        Case c;
        c.scheme = scheme;
        c.adc_bits = bits;
        c.rows = rows;
        c.out = 13;
        c.k = 131;
        c.vectors = 6;
        ExpectAllIsasAgree(c, seed++);
      }
    }
  }
}

TEST(FusedKernel, BitExactOnOddShapes) {
  uint32_t seed = 200;
  for (Scheme scheme : {Scheme::kNative, Scheme::kDifferential, Scheme::kBitSerial}) {
    for (int out : {1, 7, 8, 9, 17, 33}) {
      // K multiples of 4 take the in-place input path (no repack), the others the repacking one;
      // 196 = 3 x 64 + 4 has a short last row group of one step.
      for (int k : {1, 5, 63, 65, 150, 4, 64, 144, 196}) {
        Case c;
        c.scheme = scheme;
        c.out = out;
        c.k = k;
        c.rows = 64;
        c.vectors = (out + k) % 9 + 1;
        ExpectAllIsasAgree(c, seed++);
      }
    }
  }
}

TEST(FusedKernel, BitExactForInputAndWeightBits) {
  uint32_t seed = 300;
  for (Scheme scheme : {Scheme::kNative, Scheme::kDifferential, Scheme::kBitSerial}) {
    for (int ba : {1, 2, 4, 7, 8}) {
      if (scheme != Scheme::kBitSerial && ba > 7) continue;
      for (int bw : {2, 4, 8}) {
        Case c;
        c.scheme = scheme;
        c.input_bits = ba;
        c.weight_bits = bw;
        c.out = 11;
        c.k = 150;
        c.rows = 64;  // 8-bit weights: the AVX2 int16 stage is widened mid-group
        ExpectAllIsasAgree(c, seed++);
      }
    }
  }
}

// Steps that make p / step land exactly on .5 (ties to even), clip hard, or round nothing.
TEST(FusedKernel, BitExactAtRoundingTiesAndSaturation) {
  uint32_t seed = 400;
  for (Scheme scheme : {Scheme::kNative, Scheme::kDifferential, Scheme::kBitSerial}) {
    for (double step : {0.5, 1.0, 2.0, 3.0, 6.0, 10.0, 1.0 / 3.0, 0.1, 7.5, 1e-3, 1e6}) {
      for (int bits : {1, 4, 7}) {
        Case c;
        c.scheme = scheme;
        c.step = step;
        c.adc_bits = bits;
        c.out = 9;
        c.k = 70;
        c.rows = 16;
        ExpectAllIsasAgree(c, seed++);
      }
    }
  }
}

// Many input vectors: several row chunks per thread, a remainder micro-tile, and (O = 40: five
// 8-output blocks) a lone last block beside the pairs. Both input paths (K = 144 in place, K = 150
// repacked) and R not a multiple of 4 (repacked).
TEST(FusedKernel, BitExactOnLargeBatches) {
  uint32_t seed = 250;
  for (Scheme scheme : {Scheme::kNative, Scheme::kDifferential, Scheme::kBitSerial}) {
    for (int k : {144, 150}) {
      for (int rows : {60, 64, 62}) {
        Case c;
        c.scheme = scheme;
        c.out = 40;
        c.k = k;
        c.rows = rows;
        c.vectors = 301;
        ExpectAllIsasAgree(c, seed++);
      }
    }
  }
}

// The SIMD kernels skip the tie test when FloatAdcIsExact says the float estimate equals the
// normative rule for every reachable partial sum. Checked against brute force over every p, for
// random steps and for steps placed a hair off a rounding tie (where the estimate can be wrong).
TEST(FusedKernel, FloatAdcVerificationAgreesWithBruteForce) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> log_step(-2, 4);
  int accepted = 0, rejected = 0;
  for (int i = 0; i < 400; ++i) {
    const Scheme scheme = i % 2 == 0 ? Scheme::kNative : Scheme::kDifferential;
    const AdcRange range = CodeRange(scheme, 1 + int(rng() % 8));
    const int64_t bound = 1 + int64_t(rng() % 20000);
    double step = std::pow(10.0, log_step(rng));
    if (i % 2 == 1) {  // p0 / step = c0 + 1/2 - or + a few ulps
      const int64_t p0 = 1 + int64_t(rng() % bound);
      const int c0 = int(rng() % 64);
      step = double(p0) / (c0 + 0.5) * (1 + (int(rng() % 21) - 10) * 1e-15);
    }
    const float inv = float(1.0 / step);
    bool all = true;
    for (int64_t p = -bound; p <= bound && all; ++p) {
      all = FloatAdcCode(int32_t(p), inv, range) == IdealAdcCode(p, step, range);
    }
    const bool claimed = FloatAdcIsExact(step, range, bound);
    ASSERT_EQ(claimed, all) << "step=" << step << " range=[" << range.lo << ", " << range.hi << "] bound=" << bound;
    (claimed ? accepted : rejected) += 1;
  }
  EXPECT_GT(accepted, 100);
  EXPECT_GT(rejected, 10);  // the near-tie steps do catch the estimate out
}

// A layer whose step makes the float estimate wrong for some reachable p still converts exactly
// (the tie-checked path): inputs and weights chosen so that p = 7 * 3 occurs.
TEST(FusedKernel, BitExactWhenTheFloatEstimateIsNotExact) {
  const AdcRange range = CodeRange(Scheme::kNative, 7);
  double step = 0;
  for (int e = -10; e <= 10 && step == 0; ++e) {
    const double s = 21.0 / 3.5 * (1 + e * 1e-16);
    if (FloatAdcCode(21, float(1.0 / s), range) != IdealAdcCode(21, s, range)) step = s;
  }
  ASSERT_NE(step, 0) << "no step near 6 fools the float estimate at p = 21";
  ASSERT_FALSE(FloatAdcIsExact(step, range, 64 * 15 * 7));
  Case c;
  c.step = step;
  c.out = 16;
  c.k = 64;
  c.rows = 64;
  c.vectors = 9;
  std::mt19937 rng(12);
  runtime::LayerMapping l = MakeLayer(c, rng);
  std::vector<uint8_t> x = MakeInputs(c, rng);
  std::fill(l.weight_codes.begin(), l.weight_codes.begin() + c.k, int8_t{0});
  l.weight_codes[0] = 7;
  x[0] = 3;  // output 0 of sample 0: p = 21 in row group 0
  std::fill(x.begin() + 1, x.begin() + c.k, uint8_t{0});
  const Result ref = RunWith(l, nullptr, KernelIsa::kScalar, 1, x, c.vectors);
  ASSERT_EQ(ref.sums, Naive(l, x, c.vectors));
  EXPECT_EQ(ref.sums[0], IdealAdcCode(21, step, range));
  for (KernelIsa isa : SimdIsas()) {
    const Result r = RunWith(l, nullptr, isa, 2, x, c.vectors);
    EXPECT_EQ(r.sums, ref.sums) << KernelIsaName(isa);
  }
}

TEST(FusedKernel, IdealAdcWithUnitStepIsTheExactProduct) {
  std::mt19937 rng(5);
  Case c;
  c.adc_bits = 12;
  c.step = 1.0;
  c.rows = 8;
  c.weight_bits = 3;
  c.input_bits = 2;
  const runtime::LayerMapping l = MakeLayer(c, rng);
  const std::vector<uint8_t> x = MakeInputs(c, rng);
  for (KernelIsa isa : SimdIsas()) {
    const Result r = RunWith(l, nullptr, isa, 1, x, c.vectors);
    for (int m = 0; m < c.vectors; ++m) {
      for (int o = 0; o < c.out; ++o) {
        int exact = 0;
        for (int k = 0; k < c.k; ++k) exact += l.weight_codes[size_t(o) * c.k + k] * x[size_t(m) * c.k + k];
        EXPECT_EQ(r.sums[size_t(m) * c.out + o], exact);
      }
    }
    EXPECT_EQ(r.stats.saturations, 0);
  }
}

TEST(FusedKernel, CountsConversionsAndMacs) {
  std::mt19937 rng(6);
  Case c;
  c.scheme = Scheme::kBitSerial;
  c.input_bits = 3;
  c.out = 5;
  c.k = 100;
  c.rows = 64;
  c.vectors = 4;
  const runtime::LayerMapping l = MakeLayer(c, rng);
  const Result r = RunWith(l, nullptr, BestKernelIsa(), 1, MakeInputs(c, rng), c.vectors);
  EXPECT_EQ(r.stats.conversions, 4 * 5 * 2 * 3);  // M * O * groups * planes
  EXPECT_EQ(r.stats.macs, 4 * 5 * 100 * 3);
}

TEST(FusedKernel, RejectsInputCodeAboveInputBits) {
  std::mt19937 rng(7);
  Case c;
  c.input_bits = 2;
  const runtime::LayerMapping l = MakeLayer(c, rng);
  auto layer = FusedLayer::Create(l, nullptr);
  ASSERT_TRUE(layer.ok());
  std::vector<uint8_t> x(size_t(c.vectors) * c.k, 1);
  x[c.k + 3] = 4;
  std::vector<int32_t> s(size_t(c.vectors) * c.out);
  runtime::InputBatch in{x.data(), c.vectors, c.k, 2, 10};
  absl::Status st = (*layer)->Run(in, absl::MakeSpan(s));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "layer 'test': input code 4 of sample 11 at k=3 exceeds 3 (2-bit inputs)");
}

TEST(FusedKernel, RejectsBadLayer) {
  runtime::LayerMapping l;
  l.name = "conv9";
  l.out_channels = 2;
  l.reduction = 3;
  l.rows = 4;
  l.adc_bits = 7;
  l.input_bits = 4;
  l.adc_step = 0;
  l.weight_codes = {1, 2, 3, 4, 5, 6};
  auto r = FusedLayer::Create(l, nullptr);
  EXPECT_EQ(r.status().message(), "layer 'conv9': adc_step is 0, must be in [1e-30, 1e+30]");
  l.adc_step = 1;
  l.weight_codes[4] = -128;
  r = FusedLayer::Create(l, nullptr);
  EXPECT_EQ(r.status().message(), "layer 'conv9': weight code -128 at [1][1] is not symmetric");
}

AdcModel NoisyModel(uint64_t seed) {
  NonIdealityParams p;
  p.name = "test";
  p.seed = seed;
  p.gain_sigma = 0.02;
  p.offset_sigma_lsb = 0.3;
  p.inl_bow_lsb = 0.5;
  p.dnl_sigma_lsb = 0.2;
  p.noise_sigma_lsb = 0.7;
  return AdcModel(p);
}

TEST(FusedKernel, NoisyResultsIdenticalAcrossIsasBatchSizesAndThreads) {
  const AdcModel adc = NoisyModel(42);
  uint32_t seed = 500;
  for (Scheme scheme : {Scheme::kNative, Scheme::kDifferential, Scheme::kBitSerial}) {
    std::mt19937 rng(seed++);
    Case c;
    c.scheme = scheme;
    c.out = 19;
    c.k = 150;
    c.rows = 64;
    c.vectors = 64;
    c.adc_bits = 5;
    const runtime::LayerMapping l = MakeLayer(c, rng);
    const std::vector<uint8_t> x = MakeInputs(c, rng);
    const Result ref = RunWith(l, &adc, KernelIsa::kScalar, 1, x, c.vectors);
    EXPECT_NE(ref.sums, Naive(l, x, c.vectors)) << "noise had no effect: " << Describe(c);
    std::vector<KernelIsa> isas = SimdIsas();
    isas.push_back(KernelIsa::kScalar);
    for (KernelIsa isa : isas) {
      for (int threads : {1, 2}) {
        for (int batch : {1, 7, 64}) {
          const Result r = RunWith(l, &adc, isa, threads, x, c.vectors, batch);
          ASSERT_EQ(r.sums, ref.sums) << KernelIsaName(isa) << " threads=" << threads << " batch=" << batch
                                      << " " << Describe(c);
          EXPECT_EQ(r.stats.saturations, ref.stats.saturations);
        }
      }
    }
  }
}

// Mix64's inverse (each xor-shift and each odd multiplier undone), to build keys whose uniforms
// are chosen values.
uint64_t Unmix64(uint64_t z) {
  auto inverse = [](uint64_t c) {  // c * inverse = 1 mod 2^64 (Newton: 6 doublings of 3 bits)
    uint64_t x = c;
    for (int i = 0; i < 6; ++i) x *= 2 - c * x;
    return x;
  };
  auto unshift = [](uint64_t y, int s) {  // y = x ^ (x >> s)
    uint64_t x = y;
    for (int k = s; k < 64; k += s) x = y ^ (x >> s);
    return x;
  };
  z = unshift(z, 31);
  z *= inverse(0x94d049bb133111ebULL);
  z = unshift(z, 27);
  z *= inverse(0xbf58476d1ce4e5b9ULL);
  return unshift(z, 30);
}

// The key whose radius (which = 0) or angle (which = 1) uniform is (m + 0.5) 2^-52.
uint64_t KeyWithUniform(int which, uint64_t m) {
  return Unmix64(m << 12) ^ (which == 0 ? 0x243f6a8885a308d3ULL : 0x13198a2e03707344ULL);
}

// The AVX2 kernel's noise estimate must stay within the bound ConvertWithEstimate relies on
// (kStandardNormalEstimateError) everywhere: here 1e-12, a hundredth of it, on 4 million keys and
// at chosen uniforms: the radius uniform at every binade from 2^-53 to 1 - 2^-53 (the log's whole
// range) and the angle uniform at and next to 0, 1/8, 1/4, 1/2, 3/4 and 1 (the cosine's reductions).
TEST(FusedKernel, Avx2NoiseEstimateIsWithinItsBound) {
  if (!KernelIsaSupported(KernelIsa::kAvx2)) GTEST_SKIP() << "no AVX2 on this CPU";
  double worst = 0;
  uint64_t worst_key = 0;
  auto check = [&](const uint64_t keys[8]) {
    double estimate[8];
    StandardNormalEstimates8(keys, estimate);
    for (int i = 0; i < 8; ++i) {
      const double error = std::abs(estimate[i] - StandardNormal(keys[i]));
      if (!(error <= worst)) worst = error, worst_key = keys[i];  // NaN is the worst of all
    }
  };
  uint64_t keys[8];
  for (uint64_t n = 0; n < (uint64_t{1} << 22); n += 8) {
    for (int i = 0; i < 8; ++i) keys[i] = ConversionNoiseKey(3, 1, 2, 0, n + uint64_t(i));
    check(keys);
  }
  EXPECT_LE(worst, 1e-12) << "key " << worst_key;
  static_assert(1e-12 <= kStandardNormalEstimateError / 100, "the checked bound is a hundredth of the allowed one");

  ASSERT_EQ(Unmix64(Mix64(0x123456789abcdefULL)), 0x123456789abcdefULL);
  ASSERT_EQ(NormalRadiusUniform(KeyWithUniform(0, 0)), 0x1p-53);
  ASSERT_EQ(NormalAngleUniform(KeyWithUniform(1, (uint64_t{1} << 52) - 1)), 1 - 0x1p-53);
  const uint64_t top = (uint64_t{1} << 52) - 1;
  std::vector<uint64_t> chosen;
  for (int e = 0; e <= 52; ++e) {
    for (int64_t d : {-1, 0, 1}) {
      const int64_t m = int64_t(e == 52 ? top : (uint64_t{1} << e)) + d;
      if (m >= 0 && m <= int64_t(top)) chosen.push_back(KeyWithUniform(0, uint64_t(m)));
    }
  }
  for (uint64_t eighth = 0; eighth <= 8; ++eighth) {
    for (int64_t d = -2; d <= 2; ++d) {
      const int64_t m = int64_t(eighth << 49) + d;  // (m + 0.5) 2^-52 next to eighth / 8
      if (m >= 0 && m <= int64_t(top)) chosen.push_back(KeyWithUniform(1, uint64_t(m)));
    }
  }
  for (size_t i = 0; i < chosen.size(); i += 8) {
    for (size_t k = 0; k < 8; ++k) keys[k] = chosen[std::min(i + k, chosen.size() - 1)];
    check(keys);
  }
  EXPECT_GT(chosen.size(), 150u);
  EXPECT_LE(worst, 1e-12) << "key " << worst_key;
}

TEST(FusedKernel, NoiseDependsOnSeedAndSample) {
  std::mt19937 rng(8);
  Case c;
  c.vectors = 2;
  runtime::LayerMapping l = MakeLayer(c, rng);
  std::vector<uint8_t> x = MakeInputs(c, rng);
  std::copy(x.begin(), x.begin() + c.k, x.begin() + c.k);  // two identical samples
  const AdcModel a = NoisyModel(1), b = NoisyModel(2);
  const Result ra = RunWith(l, &a, BestKernelIsa(), 1, x, 2);
  const Result rb = RunWith(l, &b, BestKernelIsa(), 1, x, 2);
  EXPECT_NE(ra.sums, rb.sums);
  const std::vector<int32_t> s0(ra.sums.begin(), ra.sums.begin() + c.out);
  const std::vector<int32_t> s1(ra.sums.begin() + c.out, ra.sums.end());
  EXPECT_NE(s0, s1) << "same noise for two samples";
}

TEST(FusedKernel, NonIdealUsesTilePlacementColumns) {
  // An explicit table on (macro 1, column 4) that turns every conversion into its top code.
  NonIdealityParams p;
  p.name = "stuck";
  ColumnTable t;
  t.macro = 1;
  t.column = 4;
  t.thresholds.assign(7, -1e9);  // 3-bit ADC
  p.columns.push_back(t);
  const AdcModel adc(p);
  runtime::LayerMapping l;
  l.name = "fc";
  l.out_channels = 2;
  l.reduction = 4;
  l.rows = 4;
  l.adc_bits = 3;
  l.input_bits = 1;
  l.weight_bits = 2;
  l.adc_step = 1;
  l.weight_codes = {1, 0, 0, 0, 0, 1, 0, 0};
  runtime::TileSpec tile;
  tile.id = 77;
  tile.k_end = 4;
  tile.out_end = 2;
  tile.placement.macro = 1;
  tile.placement.column_offset = 2;
  tile.placement.columns = 4;  // 2 columns per 2-bit weight: output 1 sits on column 4
  l.tiles.push_back(tile);
  const std::vector<uint8_t> x = {1, 1, 0, 0};
  for (KernelIsa isa : {KernelIsa::kScalar, BestKernelIsa()}) {
    const Result r = RunWith(l, &adc, isa, 1, x, 1);
    EXPECT_EQ(r.sums, (std::vector<int32_t>{1, 3})) << KernelIsaName(isa);
  }
}

}  // namespace
}  // namespace pim::sim
