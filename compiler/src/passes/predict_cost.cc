// PredictCost: a first-order cycle and energy model per layer (see passes.h).
//
// Per output position (one im2col column of a Conv, one sample of a Gemm/MatMul), every PIM tile
// does `rounds` conversion rounds (1, or b_a bit planes for bit_serial). A round costs
// input_load + mac_settle + (adc_bits + 1) SAR cycles + readout of the tile's columns. Macros
// work in parallel, tiles on one macro one after another, with a bank switch per bank when a
// macro holds the layer in more than one bank. Link time (1 byte per input code, 2 bytes per ADC
// code) is added serially. Digital and float layers cost host energy only (cycles are chip
// cycles). Weight writes count only when the model needs more than one load phase (they are
// then repeated for every input batch; the totals count them once).
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "passes/passes.h"

namespace pim::compiler {
namespace {

int ConversionsPerOutput(runtime::Scheme scheme, int input_bits) {
  switch (scheme) {
    case runtime::Scheme::kNative: return 1;
    case runtime::Scheme::kDifferential: return 2;
    case runtime::Scheme::kBitSerial: return input_bits;
  }
  return 1;
}

uint64_t LinkCycles(const runtime::ChipSpec& chip, double bytes) {
  if (chip.timing.link_bytes_per_second <= 0) return 0;
  return static_cast<uint64_t>(std::ceil(bytes / chip.timing.link_bytes_per_second * chip.timing.clock_mhz * 1e6));
}

ir::Prediction PimLayerCost(const ir::MatrixOp& layer, const runtime::ChipSpec& chip) {
  const runtime::ChipTiming& t = chip.timing;
  const runtime::ChipEnergy& e = chip.energy;
  uint64_t positions = 1;
  for (int64_t d : layer.output_spatial) positions *= static_cast<uint64_t>(d);
  const int rounds = layer.scheme == runtime::Scheme::kBitSerial ? layer.input_bits : 1;
  const int per_output = ConversionsPerOutput(layer.scheme, layer.input_bits);
  const int readout = std::max(1, t.readout_columns_per_cycle);

  std::map<int, uint64_t> macro_cycles;
  std::map<int, std::set<int>> macro_banks;
  double conversions = 0, energy = 0, link_bytes = 0;
  for (const ir::Tile& tile : layer.tiles) {
    const int rows = tile.k_end - tile.k_begin;
    const int outputs = tile.out_end - tile.out_begin;
    const uint64_t round_cycles = static_cast<uint64_t>(t.input_load_cycles + t.mac_settle_cycles + layer.adc_bits +
                                                        1 + (tile.columns + readout - 1) / readout);
    macro_cycles[tile.macro] += round_cycles * rounds;
    macro_banks[tile.macro].insert(tile.bank);
    const double tile_conversions = static_cast<double>(outputs) * per_output;
    conversions += tile_conversions;
    energy += e.mac_pj_per_row_column * rows * tile.columns * rounds + e.input_load_pj_per_row * rows * rounds +
              e.adc_pj_per_conversion_bit * layer.adc_bits * tile_conversions +
              e.readout_pj_per_code * tile_conversions + e.digital_pj_per_op * tile_conversions;
    link_bytes += rows * rounds + 2.0 * tile_conversions;
  }
  uint64_t device = 0;
  for (const auto& [macro, cycles] : macro_cycles) {
    const size_t banks = macro_banks[macro].size();
    device = std::max(device, cycles + (banks > 1 ? banks * static_cast<uint64_t>(t.bank_switch_cycles) : 0));
  }
  ir::Prediction p;
  p.macs = static_cast<uint64_t>(layer.out_channels) * layer.reduction * positions;
  p.conversions = static_cast<uint64_t>(conversions) * positions;
  p.energy_pj = (energy + e.link_pj_per_byte * link_bytes) * static_cast<double>(positions);
  p.cycles = device * positions + LinkCycles(chip, link_bytes * static_cast<double>(positions));
  return p;
}

ir::Prediction HostLayerCost(int out, int k, const ir::Shape& spatial, const runtime::ChipSpec& chip) {
  uint64_t positions = 1;
  for (int64_t d : spatial) positions *= static_cast<uint64_t>(d);
  ir::Prediction p;
  p.macs = static_cast<uint64_t>(out) * k * positions;
  p.energy_pj = chip.energy.digital_pj_per_op * static_cast<double>(p.macs);
  return p;
}

void Add(ir::Prediction& total, const ir::Prediction& p) {
  total.cycles += p.cycles;
  total.energy_pj += p.energy_pj;
  total.conversions += p.conversions;
  total.macs += p.macs;
}

}  // namespace

absl::Status PredictCost(ir::Module& module, const PassContext& context) {
  const runtime::ChipSpec& chip = context.target;
  module.predicted = ir::Prediction{};
  for (ir::Step& step : module.steps) {
    if (ir::MatrixOp* layer = step.matrix()) {
      layer->predicted = layer->placement == ir::Placement::kPim
                             ? PimLayerCost(*layer, chip)
                             : HostLayerCost(layer->out_channels, layer->reduction, layer->output_spatial, chip);
      Add(module.predicted, layer->predicted);
    } else if (auto* fm = std::get_if<ir::FloatMatrixOp>(&step.op)) {
      ir::Shape spatial;
      if (fm->conv) {
        const ir::Shape& y = module.shapes.at(step.outputs[0]);
        spatial = {y[2], y[3]};
      }
      fm->predicted = HostLayerCost(fm->out_channels, fm->reduction, spatial, chip);
      Add(module.predicted, fm->predicted);
    }
  }
  if (module.load_phases.size() > 1) {
    double cells = 0, rows = 0;
    for (const ir::Step& step : module.steps) {
      if (const ir::MatrixOp* layer = step.matrix()) {
        for (const ir::Tile& t : layer->tiles) {
          cells += static_cast<double>(t.k_end - t.k_begin) * t.columns;
          rows += t.k_end - t.k_begin;
        }
      }
    }
    const double bytes = cells * chip.cell_bits / 8.0;
    module.predicted.cycles += static_cast<uint64_t>(rows) * chip.timing.weight_write_cycles_per_row +
                               LinkCycles(chip, bytes);
    module.predicted.energy_pj += chip.energy.weight_write_pj_per_cell * cells + chip.energy.link_pj_per_byte * bytes;
  }
  return absl::OkStatus();
}

}  // namespace pim::compiler
