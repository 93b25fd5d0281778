// DecidePlacement: PIM or digital per matrix layer, with a reason (see passes.h).
#include <variant>

#include "absl/strings/str_cat.h"
#include "passes/layer_metadata.h"
#include "passes/passes.h"

namespace pim::compiler {

absl::Status DecidePlacement(ir::Module& module, const PassContext& context) {
  const runtime::ChipSpec& chip = context.target;
  for (ir::Step& step : module.steps) {
    ir::MatrixOp* layer = step.matrix();
    const ir::FloatMatrixOp* float_layer = std::get_if<ir::FloatMatrixOp>(&step.op);
    if (layer == nullptr && float_layer == nullptr) continue;
    const std::string key = LayerKey(step.name, "placement");
    const std::optional<std::string> requested = Lookup(module, key);
    if (requested && *requested != "pim" && *requested != "digital") {
      return absl::InvalidArgumentError(
          absl::StrCat("model metadata '", key, "' = '", *requested, "': not 'pim' or 'digital'"));
    }
    if (float_layer != nullptr) {
      // A float layer runs on the host. Asking for PIM cannot be honoured; --require-pim only
      // concerns layers with quantized weights.
      if ((requested && *requested == "pim") || (context.options.require_pim && float_layer->weight_quantized)) {
        return absl::InvalidArgumentError(
            absl::StrCat(step.name, ": cannot be placed on the chip: ", float_layer->reason));
      }
      continue;
    }
    if (requested && *requested == "digital") {
      layer->placement = ir::Placement::kDigital;
      layer->placement_reason = absl::StrCat("metadata ", key, " = digital");
      continue;
    }
    const int max_input = layer->scheme == runtime::Scheme::kBitSerial ? chip.max_bit_serial_input_bits
                                                                       : chip.max_input_bits;
    std::string problem;
    if (layer->max_abs_code() == 0) {
      problem = "all weight codes are zero";
    } else if (layer->weight_bits > chip.max_weight_bits) {
      problem = absl::StrCat("weight codes need ", layer->weight_bits, " bits, target allows ", chip.max_weight_bits);
    } else if (layer->input_bits > max_input) {
      problem = absl::StrCat("input codes need ", layer->input_bits, " bits, target allows ", max_input, " for ",
                             runtime::SchemeName(layer->scheme));
    }
    if (!problem.empty()) {
      if (requested || context.options.require_pim) {
        return absl::InvalidArgumentError(absl::StrCat(step.name, ": ", problem));
      }
      layer->placement = ir::Placement::kDigital;
      layer->placement_reason = problem;
      continue;
    }
    layer->placement = ir::Placement::kPim;
    layer->placement_reason =
        requested ? absl::StrCat("metadata ", key, " = pim")
                  : absl::StrCat("mappable: weight ", layer->weight_bits, " <= ", chip.max_weight_bits, " bits, input ",
                                 layer->input_bits, " <= ", max_input, " bits");
  }
  return absl::OkStatus();
}

}  // namespace pim::compiler
