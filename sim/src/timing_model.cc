#include "pim/sim/timing_model.h"

#include <algorithm>
#include <cmath>

namespace pim::sim {

using runtime::Scheme;

void Cost::Add(const Cost& o) {
  device_cycles += o.device_cycles;
  link_cycles += o.link_cycles;
  link_bytes += o.link_bytes;
  rounds += o.rounds;
  conversions += o.conversions;
  bank_switches += o.bank_switches;
  rows_written += o.rows_written;
  cell_cycles_used += o.cell_cycles_used;
  cell_cycles_available += o.cell_cycles_available;
  energy_array_pj += o.energy_array_pj;
  energy_adc_pj += o.energy_adc_pj;
  energy_digital_pj += o.energy_digital_pj;
  energy_io_pj += o.energy_io_pj;
  energy_weight_pj += o.energy_weight_pj;
}

void Cost::AddTo(runtime::Counters* c) const {
  (*c)["cycles"] += total_cycles();
  (*c)["cycles.device"] += device_cycles;
  (*c)["cycles.link"] += link_cycles;
  (*c)["link.bytes"] += link_bytes;
  (*c)["adc.rounds"] += rounds;
  (*c)["bank.switches"] += bank_switches;
  (*c)["weights.rows_written"] += rows_written;
  (*c)["array.cell_cycles_used"] += cell_cycles_used;
  (*c)["array.cell_cycles_available"] += cell_cycles_available;
  (*c)["energy.array_pj"] += energy_array_pj;
  (*c)["energy.adc_pj"] += energy_adc_pj;
  (*c)["energy.digital_pj"] += energy_digital_pj;
  (*c)["energy.io_pj"] += energy_io_pj;
  (*c)["energy.weight_pj"] += energy_weight_pj;
  (*c)["energy.total_pj"] += total_energy_pj();
}

TimingModel::TimingModel(const runtime::ChipSpec& spec) : spec_(spec) {}

double TimingModel::LinkCycles(double bytes) const {
  if (spec_.timing.link_bytes_per_second <= 0) return 0;
  return bytes / spec_.timing.link_bytes_per_second * spec_.timing.clock_mhz * 1e6;
}

Cost TimingModel::WriteTile(int rows, int columns) const {
  Cost c;
  c.rows_written = rows;
  c.device_cycles = double(rows) * spec_.timing.weight_write_cycles_per_row;
  c.energy_weight_pj = double(rows) * columns * spec_.energy.weight_write_pj_per_cell;
  c.link_bytes = std::ceil(double(rows) * columns * spec_.cell_bits / 8.0);
  c.link_cycles = LinkCycles(c.link_bytes);
  c.energy_io_pj = c.link_bytes * spec_.energy.link_pj_per_byte;
  c.cell_cycles_available = double(spec_.macros) * spec_.rows * spec_.columns * c.device_cycles;
  return c;
}

double TimingModel::RoundCycles(int conversions_in_round, int adc_bits) const {
  const runtime::ChipTiming& t = spec_.timing;
  const double readout = std::ceil(double(conversions_in_round) / t.readout_columns_per_cycle);
  return t.input_load_cycles + t.mac_settle_cycles + (adc_bits + 1) + readout;
}

Cost TimingModel::RunTile(const runtime::TileSpec& tile, Scheme scheme, int input_bits, int adc_bits,
                          int vectors, bool bank_switch) const {
  const runtime::ChipEnergy& e = spec_.energy;
  // bit_serial: one round per input bit plane; differential: + and - columns convert together.
  const int rounds_per_vector = scheme == Scheme::kBitSerial ? input_bits : 1;
  const int per_round = tile.outputs() * (scheme == Scheme::kDifferential ? 2 : 1);
  const double round = RoundCycles(per_round, adc_bits);
  const double rounds = double(vectors) * rounds_per_vector;
  const int columns = tile.placement.columns > 0 ? tile.placement.columns : per_round;
  Cost c;
  c.rounds = rounds;
  c.conversions = rounds * per_round;
  c.bank_switches = bank_switch ? 1 : 0;
  c.device_cycles = rounds * round + (bank_switch ? spec_.timing.bank_switch_cycles : 0);
  c.cell_cycles_used = rounds * double(tile.rows()) * columns * round;
  c.cell_cycles_available = double(spec_.macros) * spec_.rows * spec_.columns * c.device_cycles;
  // Inputs go out bit-packed per vector, codes come back one byte each (<= 8-bit ADC).
  c.link_bytes = double(vectors) * (std::ceil(double(tile.rows()) * input_bits / 8.0) +
                                    double(per_round) * rounds_per_vector);
  c.link_cycles = LinkCycles(c.link_bytes);
  c.energy_array_pj = rounds * (double(tile.rows()) * columns * e.mac_pj_per_row_column +
                                double(tile.rows()) * e.input_load_pj_per_row);
  c.energy_adc_pj = c.conversions * adc_bits * e.adc_pj_per_conversion_bit;
  // One host add per code (accumulation across groups, planes and the +/- pair).
  c.energy_digital_pj = c.conversions * (e.readout_pj_per_code + e.digital_pj_per_op);
  c.energy_io_pj = c.link_bytes * e.link_pj_per_byte;
  return c;
}

Cost TimingModel::RunLayer(const runtime::LayerMapping& layer, int vectors,
                           std::vector<int>* active_bank) const {
  Cost total;
  std::vector<double> busy(spec_.macros, 0.0);
  for (const runtime::TileSpec& t : layer.tiles) {
    const int macro = std::clamp(t.placement.macro, 0, spec_.macros - 1);
    const bool sw = (*active_bank)[macro] != t.placement.bank;
    (*active_bank)[macro] = t.placement.bank;
    const Cost c = RunTile(t, layer.scheme, layer.input_bits, layer.adc_bits, vectors, sw);
    busy[macro] += c.device_cycles;
    total.Add(c);
  }
  total.device_cycles = busy.empty() ? 0 : *std::max_element(busy.begin(), busy.end());
  total.cell_cycles_available = double(spec_.macros) * spec_.rows * spec_.columns * total.device_cycles;
  return total;
}

PeakFigures TimingModel::Peak(int weight_bits, int input_bits) const {
  PeakFigures p;
  const int per_weight = runtime::ColumnsPerWeight(Scheme::kNative, weight_bits, spec_.cell_bits);
  p.outputs_per_macro = spec_.columns / per_weight;
  runtime::TileSpec tile;
  tile.k_end = spec_.rows;
  tile.out_end = p.outputs_per_macro;
  tile.placement.columns = p.outputs_per_macro * per_weight;
  const Cost c = RunTile(tile, Scheme::kNative, input_bits, spec_.adc_bits, 1, false);
  p.round_cycles = c.device_cycles;
  const double macs_per_round = double(spec_.rows) * p.outputs_per_macro;
  p.macs_per_second = spec_.macros * macs_per_round / p.round_cycles * spec_.timing.clock_mhz * 1e6;
  p.energy_per_mac_pj = (c.energy_array_pj + c.energy_adc_pj + c.energy_digital_pj) / macs_per_round;
  p.tops_per_watt = 2.0 / p.energy_per_mac_pj;  // ops/pJ = 1e12 ops/J
  return p;
}

}  // namespace pim::sim
