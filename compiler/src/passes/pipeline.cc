// The pass order, in one place.
#include "passes/passes.h"

namespace pim::compiler {

absl::Status RunPasses(ir::Module& module, const PassContext& context) {
  using Pass = absl::Status (*)(ir::Module&, const PassContext&);
  // Settings first (placement depends on the scheme), then placement, Delta (depends on R, ADC
  // bits and scheme), tiling, tile assignment, cost (depends on where tiles sit).
  static constexpr Pass kPasses[] = {&ResolveLayerSettings, &DecidePlacement, &ComputeAdcStep,
                                     &TileLayers,           &AssignTiles,     &PredictCost};
  for (Pass pass : kPasses) {
    if (absl::Status s = pass(module, context); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace pim::compiler
