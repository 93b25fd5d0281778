#include "pim/sim/fused_kernel.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "pim/runtime/program_file.h"
#include "check.h"
#include "fused_kernel_internal.h"

namespace pim::sim {
namespace {

using runtime::Scheme;

// The float estimate of p / step in the SIMD ADC is exact-tested only while |p| < 2^24 (p is
// then a float exactly) and codes stay within 12 bits (see IdealAdcCodesAvx2).
constexpr int64_t kMaxSimdPartialSum = int64_t{1} << 24;
constexpr int kMaxSimdAdcBits = 12;

int CeilDiv(int a, int b) { return (a + b - 1) / b; }

// Weights [block][g][step][vec][lanes][4]; vec 0 is Q (or Qp), vec 1 is Qn (differential).
void PackWeights(FusedLayer::Packed& L) {
  const int O = L.out_channels, K = L.reduction, R = L.rows;
  L.padded_rows = CeilDiv(R, 4) * 4;
  L.steps = L.padded_rows / 4;
  L.blocks = CeilDiv(O, L.lanes);
  L.w.assign(size_t(L.blocks) * L.groups * L.steps * L.vecs * L.lanes * 4, 0);
  size_t i = 0;
  for (int b = 0; b < L.blocks; ++b) {
    for (int g = 0; g < L.groups; ++g) {
      for (int s = 0; s < L.steps; ++s) {
        for (int v = 0; v < L.vecs; ++v) {
          for (int lane = 0; lane < L.lanes; ++lane) {
            for (int r = 0; r < 4; ++r, ++i) {
              const int o = b * L.lanes + lane;
              const int row = s * 4 + r;
              const int k = g * R + row;
              if (o >= O || row >= R || k >= K) continue;
              const int q = L.q[size_t(o) * K + k];
              if (L.scheme != Scheme::kDifferential) {
                L.w[i] = int8_t(q);
              } else {
                L.w[i] = int8_t(v == 0 ? std::max(q, 0) : std::max(-q, 0));
              }
            }
          }
        }
      }
    }
  }
}

absl::Status BuildPorts(FusedLayer::Packed& L, const runtime::LayerMapping& layer,
                        const AdcModel& adc) {
  const int O = L.out_channels;
  L.ports.assign(size_t(L.groups) * O * L.conv_columns, AdcPort{});
  std::map<std::pair<int, int>, const ColumnCurve*> cache;
  // The port of one conversion: its curve and its column's noise key for every plane.
  auto port = [&](const ColumnCurve* curve, uint32_t tile_id, uint32_t column) {
    AdcPort p;
    p.curve = curve;
    for (int plane = 0; plane < L.planes; ++plane) {
      p.noise_keys[plane] = ColumnNoiseKey(L.seed, tile_id, column, uint32_t(plane));
    }
    return p;
  };
  auto curve_of = [&](int macro, int column) -> absl::StatusOr<const ColumnCurve*> {
    auto it = cache.find({macro, column});
    if (it != cache.end()) return it->second;
    absl::StatusOr<ColumnCurve> curve = adc.Curve(macro, column, layer.adc_bits);
    if (!curve.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("layer '", layer.name, "': ", curve.status().message()));
    }
    L.curves.push_back(std::make_unique<ColumnCurve>(*std::move(curve)));
    cache[{macro, column}] = L.curves.back().get();
    return L.curves.back().get();
  };
  std::vector<bool> covered(size_t(L.groups) * O, false);
  if (layer.tiles.empty()) {
    // No placement (a layer built by hand): row group g is tile g on macro 0, output o's
    // conversions on columns o * conv_columns + conv.
    for (int g = 0; g < L.groups; ++g) {
      for (int o = 0; o < O; ++o) {
        for (int c = 0; c < L.conv_columns; ++c) {
          const int column = o * L.conv_columns + c;
          absl::StatusOr<const ColumnCurve*> curve = curve_of(0, column);
          if (!curve.ok()) return curve.status();
          L.ports[(size_t(g) * O + o) * L.conv_columns + c] = port(*curve, uint32_t(g), uint32_t(column));
        }
        covered[size_t(g) * O + o] = true;
      }
    }
  }
  for (const runtime::TileSpec& t : layer.tiles) {
    if (t.row_group < 0 || t.row_group >= L.groups || t.out_begin < 0 || t.out_end > O ||
        t.out_begin >= t.out_end) {
      return absl::InvalidArgumentError(absl::StrCat(
          "layer '", layer.name, "': tile ", t.id, " has row group ", t.row_group, " and outputs [",
          t.out_begin, ", ", t.out_end, "), layer has ", L.groups, " groups and ", O, " outputs"));
    }
    // Physical columns of one output: what the placement says, else one per conversion column.
    const int outputs = t.outputs();
    int per_output = L.conv_columns;
    if (t.placement.columns > 0 && t.placement.columns % outputs == 0 &&
        (t.placement.columns / outputs) % L.conv_columns == 0) {
      per_output = t.placement.columns / outputs;
    }
    const int per_conv = per_output / L.conv_columns;
    for (int o = t.out_begin; o < t.out_end; ++o) {
      for (int c = 0; c < L.conv_columns; ++c) {
        const int column = t.placement.column_offset + (o - t.out_begin) * per_output + c * per_conv;
        absl::StatusOr<const ColumnCurve*> curve = curve_of(t.placement.macro, column);
        if (!curve.ok()) return curve.status();
        L.ports[(size_t(t.row_group) * O + o) * L.conv_columns + c] = port(*curve, t.id, uint32_t(column));
      }
      covered[size_t(t.row_group) * O + o] = true;
    }
  }
  for (int g = 0; g < L.groups; ++g) {
    for (int o = 0; o < O; ++o) {
      if (!covered[size_t(g) * O + o]) {
        return absl::InvalidArgumentError(absl::StrCat("layer '", layer.name, "': no tile holds row group ",
                                                       g, " of output ", o));
      }
    }
  }
  return absl::OkStatus();
}

// Largest |p| whose codes a verification may check one by one: beyond it the tie-checked path
// is used (it is exact for any layer, a little slower).
constexpr int64_t kMaxVerifiedPoints = int64_t{1} << 22;

// The exact saturation bounds of the ideal rule over |p| <= bound: p < below saturates low,
// p > above saturates high (monotone in p, found by bisection).
void SaturationBounds(const FusedLayer::Packed& L, int64_t bound, int32_t* below, int32_t* above) {
  auto low = [&](int64_t p) { return std::nearbyint(double(p) / L.step) < L.range.lo; };
  auto high = [&](int64_t p) { return std::nearbyint(double(p) / L.step) > L.range.hi; };
  int64_t a = -bound, z = 0;  // smallest p in [-bound, 0] that is not low (0 never is)
  if (!low(a)) {
    z = a;
  } else {
    while (z - a > 1) {  // low(a), !low(z)
      const int64_t mid = a + (z - a) / 2;
      (low(mid) ? a : z) = mid;
    }
  }
  *below = int32_t(z);
  a = 0;
  z = bound;  // largest p in [0, bound] that is not high
  if (!high(z)) {
    a = z;
  } else {
    while (z - a > 1) {  // !high(a), high(z)
      const int64_t mid = a + (z - a) / 2;
      (high(mid) ? z : a) = mid;
    }
  }
  *above = int32_t(a);
}

}  // namespace

// Both FloatAdcCode and IdealAdcCode are monotone non-decreasing in p. The ideal rule changes
// code only where p / step crosses c - 1/2 (c in (lo, hi]); the float estimate differs from p / step
// by at most |p / step| 2^-23 <= 2^-11 codes there, i.e. step 2^-11 in p. So if the two agree
// on a window of a few p around every such crossing and at +-bound, they agree everywhere in
// between (both are constant between windows: equal at the window edges, monotone).
bool FloatAdcIsExact(double step, AdcRange range, int64_t bound) {
  if (!(step > 0) || bound >= kMaxSimdPartialSum) return false;
  const float inv = float(1.0 / step);
  auto agree = [&](int64_t p) {
    return FloatAdcCode(int32_t(p), inv, range) == IdealAdcCode(p, step, range);
  };
  if (!agree(-bound) || !agree(bound)) return false;
  const double margin = std::ceil(step / 1024.0) + 2;
  int64_t checked = 0;
  for (int c = range.lo + 1; c <= range.hi; ++c) {
    const double t = (c - 0.5) * step;
    if (t + margin < -double(bound) || t - margin > double(bound)) continue;
    const int64_t p0 = std::max<int64_t>(-bound, int64_t(std::floor(t - margin)));
    const int64_t p1 = std::min<int64_t>(bound, int64_t(std::ceil(t + margin)));
    checked += p1 - p0 + 1;
    if (checked > kMaxVerifiedPoints) return false;
    for (int64_t p = p0; p <= p1; ++p) {
      if (!agree(p)) return false;
    }
  }
  return true;
}

namespace {

// The largest input code in n bytes (the compiler vectorizes this loop).
uint8_t MaxCode(const uint8_t* x, size_t n) {
  uint8_t m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

// Repacks samples [m0, m1) into `dst` ([virtual row][G][padded_rows], virtual row (m - m0) * P + j,
// bit plane j for bit_serial), zero padded. Returns the largest input code seen.
uint8_t RepackRows(const FusedLayer::Packed& L, const uint8_t* codes, int m0, int m1, uint8_t* dst) {
  const int K = L.reduction, R = L.rows, G = L.groups, Rp = L.padded_rows, P = L.planes;
  const size_t row_bytes = size_t(G) * Rp;
  uint8_t max_code = 0;
  for (int m = m0; m < m1; ++m) {
    const uint8_t* x = codes + size_t(m) * K;
    max_code = std::max(max_code, MaxCode(x, K));
    for (int j = 0; j < P; ++j) {
      uint8_t* row = dst + (size_t(m - m0) * P + j) * row_bytes;
      for (int g = 0; g < G; ++g) {
        const int k0 = g * R, n = std::min(R, K - k0);
        uint8_t* d = row + size_t(g) * Rp;
        if (L.scheme == Scheme::kBitSerial) {
          // 8 codes at a time: after a 64-bit shift by j < 8, bit 0 of every byte is bit j of
          // that byte's code (written so, the compiler does not widen each byte to 32 bits).
          int r = 0;
          for (; r + 8 <= n; r += 8) {
            uint64_t w;
            std::memcpy(&w, x + k0 + r, 8);
            w = (w >> j) & 0x0101010101010101ULL;
            std::memcpy(d + r, &w, 8);
          }
          for (; r < n; ++r) d[r] = (x[k0 + r] >> j) & 1;
        } else {
          std::copy(x + k0, x + k0 + n, d);
        }
        std::fill(d + n, d + Rp, uint8_t{0});
      }
    }
  }
  return max_code;
}

}  // namespace

const char* KernelIsaName(KernelIsa isa) {
  switch (isa) {
    case KernelIsa::kScalar: return "scalar";
    case KernelIsa::kAvx2: return "avx2";
    case KernelIsa::kAvx512Vnni: return "avx512vnni";
  }
  return "?";
}

bool KernelIsaSupported(KernelIsa isa) {
  switch (isa) {
    case KernelIsa::kScalar: return true;
    case KernelIsa::kAvx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case KernelIsa::kAvx512Vnni:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  }
  return false;
}

KernelIsa BestKernelIsa() {
  if (KernelIsaSupported(KernelIsa::kAvx512Vnni)) return KernelIsa::kAvx512Vnni;
  if (KernelIsaSupported(KernelIsa::kAvx2)) return KernelIsa::kAvx2;
  return KernelIsa::kScalar;
}

FusedLayer::FusedLayer(std::unique_ptr<Packed> packed) : packed_(std::move(packed)) {}
FusedLayer::~FusedLayer() = default;
KernelIsa FusedLayer::isa() const { return packed_->isa; }

absl::StatusOr<std::unique_ptr<FusedLayer>> FusedLayer::Create(const runtime::LayerMapping& layer,
                                                               const AdcModel* adc,
                                                               const FusedKernelOptions& options) {
  const std::string& n = layer.name;
  auto bad = [&](const char* field, auto value, const std::string& want) {
    return absl::InvalidArgumentError(
        absl::StrCat("layer '", n, "': ", field, " is ", value, ", ", want));
  };
  if (layer.out_channels < 1) return bad("out_channels", layer.out_channels, "must be >= 1");
  if (layer.reduction < 1) return bad("reduction", layer.reduction, "must be >= 1");
  if (layer.rows < 1) return bad("rows (R)", layer.rows, "must be >= 1");
  if (layer.adc_bits < 1 || layer.adc_bits > 16) return bad("adc_bits", layer.adc_bits, "must be in [1, 16]");
  if (!(layer.adc_step >= runtime::kMinAdcStep && layer.adc_step <= runtime::kMaxAdcStep)) {
    return bad("adc_step", layer.adc_step, absl::StrCat("must be in [", runtime::kMinAdcStep, ", ", runtime::kMaxAdcStep, "]"));
  }
  if (layer.input_bits < 1 || layer.input_bits > 8) return bad("input_bits", layer.input_bits, "must be in [1, 8]");
  const size_t expect = size_t(layer.out_channels) * size_t(layer.reduction);
  if (layer.weight_codes.size() != expect) {
    return bad("weight_codes size", layer.weight_codes.size(), absl::StrCat("expected O*K = ", expect));
  }
  if (!KernelIsaSupported(options.isa)) {
    return absl::InvalidArgumentError(absl::StrCat("fused kernel ISA '", KernelIsaName(options.isa),
                                                   "' is not supported by this CPU"));
  }

  auto L = std::make_unique<Packed>();
  L->name = layer.name;
  L->scheme = layer.scheme;
  L->threads = options.threads > 0 ? options.threads : omp_get_max_threads();
  L->out_channels = layer.out_channels;
  L->reduction = layer.reduction;
  L->rows = layer.rows;
  L->groups = CeilDiv(layer.reduction, layer.rows);
  L->input_bits = layer.input_bits;
  const bool bit_serial = layer.scheme == Scheme::kBitSerial;
  L->planes = bit_serial ? layer.input_bits : 1;
  L->max_x = bit_serial ? 1 : (1 << layer.input_bits) - 1;
  L->range = CodeRange(layer.scheme, layer.adc_bits);
  L->step = layer.adc_step;
  L->vecs = layer.scheme == Scheme::kDifferential ? 2 : 1;
  L->conv_columns = L->vecs;
  L->q = layer.weight_codes;
  for (size_t i = 0; i < L->q.size(); ++i) {
    const int q = L->q[i];
    if (q == -128) {
      return absl::InvalidArgumentError(absl::StrCat("layer '", n, "': weight code -128 at [",
                                                     i / layer.reduction, "][", i % layer.reduction,
                                                     "] is not symmetric"));
    }
    L->max_abs_q = std::max(L->max_abs_q, std::abs(q));
  }

  // SIMD exactness bounds; a layer outside them runs on the scalar reference.
  const int64_t pair_bound = 2LL * L->max_x * L->max_abs_q;
  const int64_t sum_bound = int64_t(layer.rows) * L->max_x * L->max_abs_q;
  KernelIsa isa = options.isa;
  if (sum_bound >= kMaxSimdPartialSum || layer.adc_bits > kMaxSimdAdcBits) isa = KernelIsa::kScalar;
  if (isa == KernelIsa::kAvx2 && pair_bound > 32767) isa = KernelIsa::kScalar;
  L->isa = isa;
  if (isa != KernelIsa::kScalar) {
    L->lanes = isa == KernelIsa::kAvx512Vnni ? 16 : 8;
    PackWeights(*L);
    // vpmaddubsw gives int16 lanes holding 2 products each; `flush_steps` steps of them fit in
    // an int16 before they must be widened to int32.
    L->flush_steps = pair_bound == 0 ? L->steps : int(std::min<int64_t>(L->steps, 32767 / pair_bound));
    L->inv_step = float(1.0 / L->step);
    L->float_adc_exact = FloatAdcIsExact(L->step, L->range, sum_bound);
    SaturationBounds(*L, sum_bound, &L->sat_below, &L->sat_above);
  }

  if (adc != nullptr && !adc->ideal()) {
    L->ideal = false;
    L->seed = adc->seed();
    if (absl::Status s = BuildPorts(*L, layer, *adc); !s.ok()) return s;
    for (const auto& curve : L->curves) L->noisy = L->noisy || curve->noise_sigma_lsb() > 0;
  }
  return std::unique_ptr<FusedLayer>(new FusedLayer(std::move(L)));
}

absl::Status FusedLayer::Run(const runtime::InputBatch& in, absl::Span<int32_t> sums,
                             KernelStats* stats) const {
  const Packed& L = *packed_;
  const int M = in.vectors, K = L.reduction, O = L.out_channels;
  if (M < 0) return absl::InvalidArgumentError(absl::StrCat("layer '", L.name, "': ", M, " input vectors"));
  if (in.width != K) {
    return absl::InvalidArgumentError(
        absl::StrCat("layer '", L.name, "': input width is ", in.width, ", layer reduction K is ", K));
  }
  if (sums.size() != size_t(M) * O) {
    return absl::InvalidArgumentError(absl::StrCat("layer '", L.name, "': output holds ", sums.size(),
                                                   " sums, M*O is ", size_t(M) * O));
  }
  if (M == 0) return absl::OkStatus();
  if (in.codes == nullptr) return absl::InvalidArgumentError(absl::StrCat("layer '", L.name, "': no input codes"));

  // Every input code is checked against the input bits (the SIMD exactness bounds depend on
  // them), unless the caller already did (InputBatch::codes_checked, the executor): on the scalar
  // path in one pass before any sum, on the SIMD paths per work item, folded into the rows'
  // repack or run just before the kernel reads them. On failure the sums are unspecified and the
  // error names the first bad code (found by `check` over all inputs).
  const int limit = (1 << L.input_bits) - 1;
  const int64_t total = int64_t(M) * K;
  auto check = [&](unsigned max_code) -> absl::Status {
    if (int(max_code) <= limit) return absl::OkStatus();
    int64_t bad = 0;
    while (in.codes[bad] <= limit) ++bad;
    return absl::InvalidArgumentError(absl::StrCat(
        "layer '", L.name, "': input code ", int(in.codes[bad]), " of sample ", in.first_sample + bad / K,
        " at k=", bad % K, " exceeds ", limit, " (", L.input_bits, "-bit inputs)"));
  };
  auto max_pass = [&]() {
    unsigned max_code = 0;
#pragma omp parallel for schedule(static) num_threads(L.threads) reduction(max : max_code)
    for (int64_t i = 0; i < total; ++i) max_code = std::max<unsigned>(max_code, in.codes[i]);
    return max_code;
  };

  int64_t saturations = 0;
  const int threads = L.threads;
  if (L.isa == KernelIsa::kScalar) {
    if (!in.codes_checked) {
      if (absl::Status st = check(max_pass()); !st.ok()) return st;
    }
    const int chunk = 8;
    const int items = (M + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) num_threads(threads) reduction(+ : saturations)
    for (int it = 0; it < items; ++it) {
      int64_t sat = 0;
      RunScalarRows(L, in, it * chunk, std::min(M, (it + 1) * chunk), sums.data(), &sat);
      saturations += sat;
    }
  } else {
    // The kernel reads the inputs in place when every row group starts on a 4-byte step and ends
    // on one (R and K multiples of 4) and there are no bit planes; otherwise each work item
    // repacks its own rows into a thread-local buffer ([virtual row][G][padded_rows], zero padded)
    // just before computing them, so they are still in cache. Input codes are checked per work
    // item (a pass over rows the kernel is about to read); a bad code fails the whole call below.
    const int P = L.planes, G = L.groups, Rp = L.padded_rows, R = L.rows;
    const size_t row_bytes = size_t(G) * Rp;
    const int V = M * P;
    const bool in_place = P == 1 && R % 4 == 0 && K % 4 == 0;
    // Output tiles: chunks of virtual rows by groups of output blocks. Each tile is computed by
    // one thread from start to end, so the schedule cannot change any result.
    const int chunk_rows = std::max(P, (64 / P) * P);
    const int row_chunks = (V + chunk_rows - 1) / chunk_rows;
    int block_groups = 1;
    if (row_chunks < 4 * threads) block_groups = std::min(L.blocks, (4 * threads + row_chunks - 1) / row_chunks);
    // Block groups of an even size, so that no micro-tile of two blocks is split between them.
    int blocks_per_group = (L.blocks + block_groups - 1) / block_groups;
    if (blocks_per_group % 2 != 0 && blocks_per_group < L.blocks) ++blocks_per_group;
    const int items = row_chunks * block_groups;
    std::atomic<bool> code_over_limit{false};
#pragma omp parallel for schedule(static) num_threads(threads) reduction(+ : saturations)
    for (int it = 0; it < items; ++it) {
      const int rc = it / block_groups, bg = it % block_groups;
      const int v0 = rc * chunk_rows, v1 = std::min(V, v0 + chunk_rows);
      const int b0 = bg * blocks_per_group, b1 = std::min(L.blocks, b0 + blocks_per_group);
      if (b0 >= b1) continue;
      KernelCall call{&L, nullptr, 0, 0, 0, in.first_sample, sums.data()};
      if (in_place) {
        if (!in.codes_checked && MaxCode(in.codes + size_t(v0) * K, size_t(v1 - v0) * K) > limit) {
          code_over_limit = true;
          continue;
        }
        call.x = in.codes;
        call.row_stride = size_t(K);
        call.group_stride = size_t(R);
      } else {
        // Reused across calls of this thread: fresh pages for every call would cost more than
        // the repacking itself.
        thread_local std::vector<uint8_t> scratch;
        if (scratch.size() < size_t(chunk_rows) * row_bytes) scratch.resize(size_t(chunk_rows) * row_bytes);
        if (RepackRows(L, in.codes, v0 / P, v1 / P, scratch.data()) > limit) {
          code_over_limit = true;
          continue;
        }
        call.x = scratch.data();
        call.v_base = v0;
        call.row_stride = row_bytes;
        call.group_stride = size_t(Rp);
      }
      int64_t sat = 0;
      if (L.isa == KernelIsa::kAvx2) {
        RunAvx2Block(call, v0, v1, b0, b1, &sat);
      } else {
        RunAvx512Block(call, v0, v1, b0, b1, &sat);
      }
      saturations += sat;
    }
    if (code_over_limit) return check(max_pass());
  }
  if (stats != nullptr) {
    const int64_t conversions = int64_t(M) * O * L.groups * L.conv_columns * L.planes;
    stats->conversions += conversions;
    stats->saturations += saturations;
    stats->macs += int64_t(M) * O * K * L.conv_columns * L.planes;
  }
  return absl::OkStatus();
}

// The portable reference: docs/onnx-convention.md 3.1 written out, one conversion at a time.
void RunScalarRows(const FusedLayer::Packed& L, const runtime::InputBatch& in, int m_begin,
                   int m_end, int32_t* sums, int64_t* saturations) {
  const int K = L.reduction, O = L.out_channels, R = L.rows;
  for (int m = m_begin; m < m_end; ++m) {
    const uint8_t* x = in.codes + size_t(m) * K;
    const uint64_t sample = in.first_sample + uint64_t(m);
    for (int o = 0; o < O; ++o) {
      const int8_t* q = L.q.data() + size_t(o) * K;
      int64_t s = 0;
      for (int g = 0; g < L.groups; ++g) {
        const int k0 = g * R, k1 = std::min(K, k0 + R);
        bool sat = false;
        if (L.scheme == runtime::Scheme::kDifferential) {
          int64_t pp = 0, pn = 0;
          for (int k = k0; k < k1; ++k) {
            pp += int64_t(std::max<int>(q[k], 0)) * x[k];
            pn += int64_t(std::max<int>(-q[k], 0)) * x[k];
          }
          const int cp = L.ideal ? IdealAdcCode(pp, L.step, L.range, &sat)
                                 : NonIdealCode(L, pp, g, o, 0, 0, sample, &sat);
          *saturations += sat;
          const int cn = L.ideal ? IdealAdcCode(pn, L.step, L.range, &sat)
                                 : NonIdealCode(L, pn, g, o, 1, 0, sample, &sat);
          *saturations += sat;
          s += cp - cn;
        } else {
          for (int j = 0; j < L.planes; ++j) {
            int64_t p = 0;
            for (int k = k0; k < k1; ++k) {
              const int xv = L.scheme == runtime::Scheme::kBitSerial ? (x[k] >> j) & 1 : x[k];
              p += int64_t(q[k]) * xv;
            }
            const int c = L.ideal ? IdealAdcCode(p, L.step, L.range, &sat)
                                  : NonIdealCode(L, p, g, o, 0, j, sample, &sat);
            *saturations += sat;
            s += int64_t(c) << j;
          }
        }
      }
      sums[size_t(m) * O + o] = int32_t(s);
    }
  }
}

}  // namespace pim::sim
