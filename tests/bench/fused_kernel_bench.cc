// Simulated MACs/s of the fused kernel on ResNet-style layers (3x3 conv, C -> C, pad 1, batch 64,
// the spatial sizes of the bundled Fashion-MNIST ResNet), beside oneDNN's int8 matmul on the same
// im2col shapes and thread counts, and beside the per-group float simulation of training
// frameworks (PyTorch, tests/bench/torch_pergroup.py), all in one run. Prints a ratio table at
// the end. Figures only: nothing here passes or fails on time. The kernel is called as the
// executor calls it: on im2col rows of codes the executor has already checked while narrowing
// them (InputBatch::codes_checked), so, like oneDNN, it does not scan its inputs first.
//
//   build/bin/pim_bench_fused --benchmark_min_time=0.2 --benchmark_repetitions=3

#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"
#include "pim/runtime/host_ops.h"
#include "pim/sim/fused_kernel.h"

namespace {

using pim::runtime::Scheme;
using pim::sim::FusedLayer;

struct Shape {
  const char* name;
  int c, h, w;
};
constexpr Shape kShapes[] = {{"c16_28x28", 16, 28, 28}, {"c32_14x14", 32, 14, 14}, {"c64_7x7", 64, 7, 7}};
constexpr int kBatch = 64;
constexpr int kRows = 64;
constexpr int kAdcBits = 7;
constexpr int kInputBits = 4;

int64_t Macs(const Shape& s) { return int64_t(kBatch) * s.h * s.w * (9 * s.c) * s.c; }

// Input codes NCHW and their im2col matrix [N*H*W][C*9] (k = (c, ky, kx), zero padding).
struct LayerData {
  std::vector<uint8_t> nchw;
  std::vector<uint8_t> cols;
  std::vector<int8_t> q;  // [O][K]
};

void Im2col(const Shape& s, const uint8_t* nchw, uint8_t* cols) {
  const int K = 9 * s.c;
  for (int n = 0; n < kBatch; ++n) {
    for (int y = 0; y < s.h; ++y) {
      for (int x = 0; x < s.w; ++x) {
        uint8_t* row = cols + ((size_t(n) * s.h + y) * s.w + x) * K;
        for (int c = 0; c < s.c; ++c) {
          const uint8_t* plane = nchw + (size_t(n) * s.c + c) * s.h * s.w;
          for (int ky = 0; ky < 3; ++ky) {
            const int yy = y + ky - 1;
            for (int kx = 0; kx < 3; ++kx) {
              const int xx = x + kx - 1;
              *row++ = (yy < 0 || yy >= s.h || xx < 0 || xx >= s.w) ? 0 : plane[yy * s.w + xx];
            }
          }
        }
      }
    }
  }
}

const LayerData& Data(const Shape& s) {
  static std::map<std::string, LayerData> cache;
  auto it = cache.find(s.name);
  if (it != cache.end()) return it->second;
  LayerData d;
  std::mt19937 rng(1);
  d.nchw.resize(size_t(kBatch) * s.c * s.h * s.w);
  for (auto& v : d.nchw) v = uint8_t(rng() % 16);
  d.cols.resize(size_t(kBatch) * s.h * s.w * 9 * s.c);
  Im2col(s, d.nchw.data(), d.cols.data());
  d.q.resize(size_t(s.c) * 9 * s.c);
  for (auto& v : d.q) v = int8_t(int(rng() % 15) - 7);
  return cache.emplace(s.name, std::move(d)).first->second;
}

pim::runtime::LayerMapping Mapping(const Shape& s, Scheme scheme) {
  pim::runtime::LayerMapping l;
  l.name = s.name;
  l.out_channels = s.c;
  l.reduction = 9 * s.c;
  l.scheme = scheme;
  l.rows = kRows;
  l.adc_bits = kAdcBits;
  l.input_bits = kInputBits;
  l.weight_bits = 4;
  l.weight_codes = Data(s).q;
  // Full-range step (docs/onnx-convention.md 3.2).
  double p_max = 0;
  const int K = l.reduction;
  for (int o = 0; o < s.c; ++o) {
    for (int k0 = 0; k0 < K; k0 += kRows) {
      double pos = 0, neg = 0;
      for (int k = k0; k < std::min(K, k0 + kRows); ++k) {
        pos += std::max<int>(l.weight_codes[size_t(o) * K + k], 0);
        neg += std::max<int>(-l.weight_codes[size_t(o) * K + k], 0);
      }
      p_max = std::max(p_max, std::max(pos, neg));
    }
  }
  const bool bs = scheme == Scheme::kBitSerial;
  const double code_max = scheme == Scheme::kDifferential ? (1 << kAdcBits) - 1 : (1 << (kAdcBits - 1)) - 1;
  l.adc_step = p_max * (bs ? 1 : 15) / code_max;
  return l;
}

void SetRate(benchmark::State& state, const Shape& s) {
  state.counters["MACs/s"] = benchmark::Counter(double(Macs(s)) * state.iterations(), benchmark::Counter::kIsRate);
}

// The fused kernel on the im2col matrix (what SimBackend::RunLayer receives); with_im2col adds
// the executor's own im2col of the NCHW codes (the whole layer as pimrun runs it).
void BM_Fused(benchmark::State& state, Shape s, Scheme scheme, bool with_im2col) {
  const int threads = int(state.range(0));
  omp_set_num_threads(threads);  // the im2col's OpenMP region too
  pim::sim::FusedKernelOptions opt;
  opt.threads = threads;
  auto layer = FusedLayer::Create(Mapping(s, scheme), nullptr, opt);
  if (!layer.ok()) {
    state.SkipWithError(std::string(layer.status().message()).c_str());
    return;
  }
  const LayerData& d = Data(s);
  const int M = kBatch * s.h * s.w;
  std::vector<uint8_t> cols(d.cols.size());
  pim::runtime::ConvParams conv;  // the executor's im2col (runtime host_ops), 3x3, pad 1
  conv.in_channels = s.c;
  conv.kernel_h = conv.kernel_w = 3;
  conv.pad_top = conv.pad_left = conv.pad_bottom = conv.pad_right = 1;
  std::vector<int32_t> sums(size_t(M) * s.c);
  for (auto _ : state) {
    const uint8_t* x = d.cols.data();
    if (with_im2col) {
      pim::runtime::Im2ColCodes(d.nchw.data(), kBatch, s.h, s.w, conv, cols.data());
      x = cols.data();
    }
    // As the executor passes them: codes already checked while narrowed (ToCodes, host path).
    absl::Status st = (*layer)->Run({x, M, 9 * s.c, kInputBits, 0, /*codes_checked=*/true}, absl::MakeSpan(sums));
    if (!st.ok()) state.SkipWithError(std::string(st.message()).c_str());
    benchmark::DoNotOptimize(sums.data());
  }
  SetRate(state, s);
  state.SetLabel(pim::sim::KernelIsaName((*layer)->isa()));
  omp_set_num_threads(omp_get_num_procs());
}

// oneDNN int8 matmul: u8 [M][K] x s8 [K][O] -> s32 [M][O], weights in the layout oneDNN picks.
void BM_OneDnn(benchmark::State& state, Shape s) {
  const int threads = int(state.range(0));
  omp_set_num_threads(threads);
  using namespace dnnl;
  engine eng(engine::kind::cpu, 0);
  stream strm(eng);
  const int M = kBatch * s.h * s.w, K = 9 * s.c, O = s.c;
  memory::desc a_md({M, K}, memory::data_type::u8, memory::format_tag::ab);
  memory::desc b_any({K, O}, memory::data_type::s8, memory::format_tag::any);
  memory::desc b_md({K, O}, memory::data_type::s8, memory::format_tag::ab);
  memory::desc c_md({M, O}, memory::data_type::s32, memory::format_tag::ab);
  matmul::primitive_desc pd(matmul::desc(a_md, b_any, c_md), eng);  // oneDNN 2.x API
  const LayerData& d = Data(s);
  std::vector<int8_t> b(size_t(K) * O);
  for (int o = 0; o < O; ++o)
    for (int k = 0; k < K; ++k) b[size_t(k) * O + o] = d.q[size_t(o) * K + k];
  memory a_mem(a_md, eng, const_cast<uint8_t*>(d.cols.data()));
  memory b_plain(b_md, eng, b.data());
  memory b_mem(pd.weights_desc(), eng);
  reorder(b_plain, b_mem).execute(strm, b_plain, b_mem);
  memory c_mem(c_md, eng);
  matmul prim(pd);
  for (auto _ : state) {
    prim.execute(strm, {{DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, b_mem}, {DNNL_ARG_DST, c_mem}});
    strm.wait();
  }
  SetRate(state, s);
  state.SetLabel(pd.impl_info_str());
  omp_set_num_threads(omp_get_num_procs());
}

// Collects MACs/s by benchmark name for the summary: the best of the repetitions
// (--benchmark_repetitions=N; the PyTorch side is also best of 3), aggregates ignored.
class Collector : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      auto it = r.counters.find("MACs/s");
      if (it == r.counters.end() || r.error_occurred || r.run_type == Run::RT_Aggregate) continue;
      double& best = rates[r.benchmark_name()];
      best = std::max(best, double(it->second.value));
    }
    ConsoleReporter::ReportRuns(runs);
  }
  std::map<std::string, double> rates;
};

// mode: "conv" (tools/qat's formulation) or "matmul" (unfold + a matmul per group).
double TorchSeconds(const Shape& s, int threads, const char* mode) {
  const std::string cmd = std::string("/usr/bin/python3 ") + PIM_BENCH_DIR + "/torch_pergroup.py " +
                          std::to_string(s.c) + " " + std::to_string(s.h) + " " + std::to_string(s.w) + " " +
                          std::to_string(kBatch) + " " + std::to_string(kRows) + " " + std::to_string(kAdcBits) +
                          " " + std::to_string(threads) + " 3 " + mode + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return 0;
  double seconds = 0;
  char line[256];
  while (fgets(line, sizeof line, p) != nullptr) std::sscanf(line, "seconds=%lf", &seconds);
  pclose(p);
  return seconds;
}

}  // namespace

int main(int argc, char** argv) {
  const struct {
    const char* name;
    Scheme scheme;
  } schemes[] = {{"native", Scheme::kNative}, {"differential", Scheme::kDifferential}, {"bit_serial", Scheme::kBitSerial}};
  for (const Shape& s : kShapes) {
    for (const auto& sc : schemes) {
      benchmark::RegisterBenchmark((std::string("fused/") + sc.name + "/" + s.name).c_str(), BM_Fused, s, sc.scheme, false)
          ->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
    }
    benchmark::RegisterBenchmark((std::string("fused+im2col/native/") + s.name).c_str(), BM_Fused, s, Scheme::kNative, true)
        ->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark((std::string("onednn_s8/") + s.name).c_str(), BM_OneDnn, s)
        ->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
  }
  benchmark::Initialize(&argc, argv);
  Collector reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);

  std::printf("\nSummary (MACs counted as M x K x O of the layer, batch %d, R=%d, %d-bit ADC, %d-bit inputs):\n",
              kBatch, kRows, kAdcBits, kInputBits);
  std::printf("torch conv: one conv2d over row-group-masked weight copies (tools/qat/quant.py); torch matmul:\n"
              "unfold + one matmul per row group. Speed-ups are fused native over each.\n");
  std::printf("%-10s %3s %12s %13s %7s %14s %11s %8s %13s %8s %11s\n", "layer", "thr", "fused GMAC/s",
              "oneDNN GMAC/s", "ratio", "+im2col GMAC/s", "torch conv", "speedup", "torch matmul", "speedup",
              "bit_ser/nat");
  for (const Shape& s : kShapes) {
    for (int t : {1, 2}) {
      const std::string suffix = std::string(s.name) + "/" + std::to_string(t) + "/real_time";
      const double fused = reporter.rates["fused/native/" + suffix];
      const double dnn = reporter.rates["onednn_s8/" + suffix];
      const double im2col = reporter.rates["fused+im2col/native/" + suffix];
      const double bs = reporter.rates["fused/bit_serial/" + suffix];
      if (fused == 0) continue;  // filtered out
      const double conv_s = TorchSeconds(s, t, "conv"), matmul_s = TorchSeconds(s, t, "matmul");
      const double conv = conv_s > 0 ? double(Macs(s)) / conv_s : 0;
      const double matmul = matmul_s > 0 ? double(Macs(s)) / matmul_s : 0;
      std::printf("%-10s %3d %12.2f %13.2f %7.2f %14.2f %11.3f %8.1f %13.3f %8.1f %11.2f\n", s.name, t, fused / 1e9,
                  dnn / 1e9, dnn > 0 ? fused / dnn : 0, im2col / 1e9, conv / 1e9, conv > 0 ? fused / conv : 0,
                  matmul / 1e9, matmul > 0 ? fused / matmul : 0, bs > 0 ? bs / fused : 0);
    }
  }
  return 0;
}
