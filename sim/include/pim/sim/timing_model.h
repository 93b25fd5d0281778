#pragma once

#include <vector>

#include "pim/runtime/backend.h"
#include "pim/runtime/chip_spec.h"

namespace pim::sim {

// Cycles, events and energy of device commands, by component. All figures are counts (cycles at
// the chip clock, picojoules); nothing here reads a clock. See docs/chip-model.md for every
// parameter's source and the command model.
struct Cost {
  double device_cycles = 0;  // chip busy time (a layer: the slowest macro; macros run in parallel)
  double link_cycles = 0;    // host link transfer, converted to chip cycles (not overlapped)
  double link_bytes = 0;
  double rounds = 0;         // MAC + conversion rounds (summed over macros)
  double conversions = 0;
  double bank_switches = 0;
  double rows_written = 0;
  double cell_cycles_used = 0;       // sum over rounds of used rows x used columns x round cycles
  double cell_cycles_available = 0;  // macros x rows x columns x device cycles
  double energy_array_pj = 0;    // cells in the analog MAC + input DAC loads
  double energy_adc_pj = 0;      // SAR conversions
  double energy_digital_pj = 0;  // code readout + host digital accumulation
  double energy_io_pj = 0;       // host link
  double energy_weight_pj = 0;   // weight writes

  void Add(const Cost& other);
  double total_cycles() const { return device_cycles + link_cycles; }
  double total_energy_pj() const {
    return energy_array_pj + energy_adc_pj + energy_digital_pj + energy_io_pj + energy_weight_pj;
  }
  // Adds this cost to the named counters: "cycles", "cycles.device", "cycles.link", "link.bytes",
  // "adc.rounds", "bank.switches", "weights.rows_written", "array.cell_cycles_used",
  // "array.cell_cycles_available", "energy.array_pj", "energy.adc_pj", "energy.digital_pj",
  // "energy.io_pj", "energy.weight_pj", "energy.total_pj".
  void AddTo(runtime::Counters* counters) const;
};

// The default target's headline figures, derived from the spec alone (docs/chip-model.md).
struct PeakFigures {
  int outputs_per_macro = 0;      // native, `weight_bits` weights, every column used
  double round_cycles = 0;        // one full-array native round with `input_bits` inputs
  double macs_per_second = 0;     // all macros, every row and column busy, no link
  double energy_per_mac_pj = 0;   // device energy (array, ADC, digital), no link, no weight writes
  double tops_per_watt = 0;       // 2 ops per MAC
};

// The command model of one chip. Immutable; thread-safe.
class TimingModel {
 public:
  explicit TimingModel(const runtime::ChipSpec& spec);

  // Writing one tile: `rows` rows of `columns` cells, the weights sent over the link bit-packed.
  Cost WriteTile(int rows, int columns) const;

  // One MAC + ADC round of a tile: input load, settle, SAR (bits + 1 cycles, all columns in
  // parallel) and readout of the round's codes.
  double RoundCycles(int conversions_in_round, int adc_bits) const;

  // Running `vectors` inputs through one tile (one command). `bank_switch`: the macro had
  // another bank active.
  Cost RunTile(const runtime::TileSpec& tile, runtime::Scheme scheme, int input_bits, int adc_bits,
               int vectors, bool bank_switch) const;

  // Running `vectors` inputs through a whole layer: the tiles of one macro run one after the
  // other (with a bank switch whenever the active bank changes; `active_bank` per macro is
  // updated, -1 = none), different macros in parallel. Sums of RunTile except device_cycles
  // (the busiest macro) and cell_cycles_available.
  Cost RunLayer(const runtime::LayerMapping& layer, int vectors, std::vector<int>* active_bank) const;

  PeakFigures Peak(int weight_bits, int input_bits) const;

  const runtime::ChipSpec& spec() const { return spec_; }

 private:
  double LinkCycles(double bytes) const;
  runtime::ChipSpec spec_;
};

}  // namespace pim::sim
