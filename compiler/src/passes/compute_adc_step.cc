// ComputeAdcStep: Delta per PIM layer and its rule (docs/onnx-convention.md 3.2).
#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "passes/adc_step.h"
#include "passes/layer_metadata.h"
#include "passes/passes.h"
#include "pim/runtime/program_file.h"

namespace pim::compiler {

double FullRangeAdcStep(const ir::MatrixOp& layer) {
  const int64_t x_top =
      layer.scheme == runtime::Scheme::kBitSerial ? 1 : (int64_t{1} << layer.input_bits) - 1;
  const double code_max = layer.scheme == runtime::Scheme::kDifferential
                              ? std::ldexp(1.0, layer.adc_bits) - 1
                              : std::ldexp(1.0, layer.adc_bits - 1) - 1;
  int64_t p_max = 0;
  const int k = layer.reduction;
  for (int o = 0; o < layer.out_channels; ++o) {
    const int8_t* row = layer.weight_codes.data() + static_cast<size_t>(o) * k;
    for (int begin = 0; begin < k; begin += layer.rows) {
      const int end = std::min(k, begin + layer.rows);
      int64_t pos = 0, neg = 0;
      for (int kk = begin; kk < end; ++kk) {
        if (row[kk] > 0) pos += row[kk];
        if (row[kk] < 0) neg -= row[kk];
      }
      p_max = std::max({p_max, pos, neg});
    }
  }
  p_max *= x_top;
  if (p_max == 0) return 1.0;
  return static_cast<double>(p_max) / code_max;
}

namespace {

bool InStepRange(double step) { return step >= runtime::kMinAdcStep && step <= runtime::kMaxAdcStep; }

}  // namespace

absl::Status ComputeAdcStep(ir::Module& module, const PassContext& context) {
  for (ir::Step& step : module.steps) {
    ir::MatrixOp* layer = step.matrix();
    if (layer == nullptr) continue;
    if (layer->placement != ir::Placement::kPim) {
      layer->adc_step = 1.0;
      continue;
    }
    if (context.options.adc_step) {
      if (!InStepRange(*context.options.adc_step)) {
        return absl::InvalidArgumentError(absl::StrCat("--adc-step ", *context.options.adc_step, " must be in [",
                                                       runtime::kMinAdcStep, ", ", runtime::kMaxAdcStep, "]"));
      }
      layer->adc_step = *context.options.adc_step;
      layer->adc_step_rule = ir::AdcStepRule::kOverride;
      continue;
    }
    absl::StatusOr<std::optional<double>> trained = LookupPositiveDouble(module, LayerKey(step.name, "adc_step"));
    if (!trained.ok()) return trained.status();
    if (trained->has_value()) {
      if (!InStepRange(**trained)) {
        return absl::InvalidArgumentError(absl::StrCat("metadata ", LayerKey(step.name, "adc_step"), " = ", **trained,
                                                       ": must be in [", runtime::kMinAdcStep, ", ",
                                                       runtime::kMaxAdcStep, "]"));
      }
      layer->adc_step = **trained;
      layer->adc_step_rule = ir::AdcStepRule::kTrained;
      continue;
    }
    layer->adc_step = FullRangeAdcStep(*layer);
    layer->adc_step_rule = ir::AdcStepRule::kFullRange;
  }
  return absl::OkStatus();
}

}  // namespace pim::compiler
