// TileLayers: row groups x output blocks per PIM layer (see passes.h).
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "passes/passes.h"
#include "passes/tiling.h"
#include "pim/runtime/backend.h"

namespace pim::compiler {

int ColumnsPerOutput(runtime::Scheme scheme, int weight_bits, int cell_bits) {
  // One definition shared with the runtime's loader, which checks columns against it.
  return runtime::ColumnsPerWeight(scheme, weight_bits, cell_bits);
}

absl::Status TileLayers(ir::Module& module, const PassContext& context) {
  const runtime::ChipSpec& chip = context.target;
  uint32_t next_id = 0;
  for (ir::Step& step : module.steps) {
    ir::MatrixOp* layer = step.matrix();
    if (layer == nullptr) continue;
    layer->tiles.clear();
    if (layer->placement != ir::Placement::kPim) continue;
    const int per_output = ColumnsPerOutput(layer->scheme, layer->weight_bits, chip.cell_bits);
    const int outputs_per_tile = chip.columns / per_output;
    if (per_output < 1 || outputs_per_tile < 1) {
      return absl::InvalidArgumentError(absl::StrCat(step.name, ": one output needs ", per_output,
                                                     " columns, a macro of target ", chip.name, " has ", chip.columns));
    }
    const int k = layer->reduction;
    const int groups = (k + layer->rows - 1) / layer->rows;
    for (int g = 0; g < groups; ++g) {
      for (int out = 0; out < layer->out_channels; out += outputs_per_tile) {
        ir::Tile t;
        t.id = next_id++;
        t.row_group = g;
        t.k_begin = g * layer->rows;
        t.k_end = std::min(k, (g + 1) * layer->rows);
        t.out_begin = out;
        t.out_end = std::min(layer->out_channels, out + outputs_per_tile);
        t.columns = (t.out_end - t.out_begin) * per_output;
        layer->tiles.push_back(t);
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace pim::compiler
