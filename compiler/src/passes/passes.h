#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ir/graph.h"
#include "ir/module.h"
#include "passes/pass_context.h"

// The compiler passes, one per file, in the order RunPasses (pipeline.cc) applies them.
// Each takes the module, changes what its contract says, and returns an error naming the layer.
namespace pim::compiler {

// lower_graph.cc: ONNX graph with inferred shapes -> steps. Folds weight quantizers (QDQ int8
// codes or QONNX Quant) into matrix layers (Q [O][K], b_w, s_w) and reads each layer's input
// codes (b_a, s_x); keeps activation quantizers as QuantizeStep (+ DequantizeStep when a host op
// reads the float value) and every host op as its step. Float Conv/Gemm/MatMul -> FloatMatrixOp.
absl::StatusOr<ir::Module> LowerGraph(const ir::Graph& graph);

// resolve_layer_settings.cc: scheme, R and ADC bits of every matrix layer
// (option > pim.layer.<node>.* > pim.* > target default), checked against the target.
absl::Status ResolveLayerSettings(ir::Module& module, const PassContext& context);

// decide_placement.cc: PIM or digital for each matrix layer, with a human-readable reason.
// Explicit pim.layer.<node>.placement = pim (or --require-pim) on an unmappable layer is an error.
absl::Status DecidePlacement(ir::Module& module, const PassContext& context);

// compute_adc_step.cc: Delta of each PIM layer and the rule that set it
// (override > trained > full-range, docs/onnx-convention.md 3.2); digital layers get Delta = 1.
absl::Status ComputeAdcStep(ir::Module& module, const PassContext& context);

// tile_layers.cc: cuts each PIM layer into tiles of one row group (R rows) x as many outputs as
// fit in a macro's columns (ceil(b_w/cell_bits) columns per output, 2*ceil((b_w-1)/cell_bits)
// for differential). Tile ids are unique in the module.
absl::Status TileLayers(ir::Module& module, const PassContext& context);

// assign_tiles.cc: puts every tile on a (macro, bank, column offset); when the chip cannot hold
// all tiles at once, splits the layers into load phases (the reload plan).
absl::Status AssignTiles(ir::Module& module, const PassContext& context);

// predict_cost.cc: predicted cycles, energy, conversions and MACs per layer and in total
// (one input sample) from the target's ChipTiming and ChipEnergy.
absl::Status PredictCost(ir::Module& module, const PassContext& context);

// pipeline.cc: runs every pass after LowerGraph in order.
absl::Status RunPasses(ir::Module& module, const PassContext& context);

}  // namespace pim::compiler
