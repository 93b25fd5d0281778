#pragma once

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "pim/runtime/backend.h"
#include "pim/sim/adc_model.h"

namespace pim::sim {

// Instruction-set variants of the fused kernel. kScalar is the portable reference: the loop of
// docs/onnx-convention.md 3.1 written out, one conversion at a time. The SIMD variants are tested bit for bit
// against it.
enum class KernelIsa { kScalar, kAvx2, kAvx512Vnni };

const char* KernelIsaName(KernelIsa isa);  // "scalar", "avx2", "avx512vnni"
bool KernelIsaSupported(KernelIsa isa);    // runtime CPU check (__builtin_cpu_supports)
KernelIsa BestKernelIsa();                 // the fastest supported variant

// Counters of one Run (added into the backend's named counters).
struct KernelStats {
  int64_t conversions = 0;  // "adc.conversions"
  int64_t saturations = 0;  // "adc.saturations": rne(p / step) (or the analog value) off scale
  int64_t macs = 0;         // "xbar.macs": (row, conversion) pairs, i.e. cell MACs per column
};

struct FusedKernelOptions {
  KernelIsa isa = BestKernelIsa();
  int threads = 0;  // OpenMP threads; 0: the OpenMP default
};

// A PIM matrix layer prepared for the fused tile-MAC + ADC kernel (docs/chip-model.md 5): for every output
// the kernel computes each row group's partial sum in registers, converts it (ideal ADC through
// an exact test of the rne rule, or the non-ideal model) and adds the code to the output's running
// sum, which also stays in registers across row groups; no partial sums are written to memory.
//
// Created once per layer (weights packed for the chosen ISA); Run may then be called any number
// of times, also concurrently. Immutable after Create. Results are identical for every ISA,
// thread count and batch split (noise is keyed by the global sample index).
class FusedLayer {
 public:
  // Packs `layer` (weights [O][K], scheme, R, ADC bits and step, input bits; tiles locate each
  // conversion's physical column for the non-ideal ADC, and may be empty, see docs/chip-model.md).
  // `adc` must outlive the FusedLayer. Errors name the layer and the offending value.
  static absl::StatusOr<std::unique_ptr<FusedLayer>> Create(const runtime::LayerMapping& layer,
                                                            const AdcModel* adc,
                                                            const FusedKernelOptions& options = {});

  // S[m][o] (row-major [M][O]) for M = inputs.vectors input vectors of width K.
  // Fails (naming the sample and the value) if an input code exceeds 2^input_bits - 1.
  absl::Status Run(const runtime::InputBatch& inputs, absl::Span<int32_t> sums,
                   KernelStats* stats = nullptr) const;

  KernelIsa isa() const;
  ~FusedLayer();

  struct Packed;  // private layout, see fused_kernel_internal.h

 private:
  explicit FusedLayer(std::unique_ptr<Packed> packed);
  std::unique_ptr<Packed> packed_;
};

}  // namespace pim::sim
