#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pim/runtime/backend.h"
#include "pim/runtime/backend_registry.h"
#include "pim/runtime/chip_spec.h"
#include "pim/runtime/device_uri.h"
#include "pim/sim/adc_model.h"
#include "pim/sim/fused_kernel.h"
#include "pim/sim/timing_model.h"

namespace pim::sim {

// Everything a SimBackend is built from (gem5-style params struct).
struct SimParams {
  runtime::ChipSpec spec;   // the chip modelled; must pass runtime::ChipSpecFromProto's ranges
  uint64_t seed = 0;        // noise seed; replaces profile.seed
  std::string profile_name = "ideal";
  NonIdealityParams profile;  // the ADC non-idealities (all zero: ideal); see profile.h
  FusedKernelOptions kernel;  // ISA and threads of the RunLayer fast path
};

// The simulated chip: it stores tiles per (macro, bank) as written and runs MVM + ADC as
// docs/onnx-convention.md 3.1 says, with the ADC ideal or per the non-ideality profile (AdcModel; noise keyed by
// (seed, tile, column, plane, sample), so results do not depend on batching or threads).
// RunTile is the obvious reference; RunLayer runs a loaded layer through the fused kernel
// (fused_kernel.h) and gives the same sums and the same ADC counters as the default RunLayer
// over RunTile. A layer whose tiles were overwritten or reconfigured since LoadLayer, or whose
// mapping holds only part of the layer (one load phase), runs on the default path (which then
// computes that part, or fails like the device would).
//
// Storage follows the hardware: writing a tile overwrites any tile that shared one of its cells
// in the same macro and bank (the old tile's id becomes unknown). Every command is validated
// (placement inside the chip, code ranges, sizes) and fails with a status naming the tile.
//
// Counters (cumulative): "xbar.macs" (weight x input products evaluated: rows x outputs per
// conversion), "adc.conversions", "adc.saturations" (conversions clamped to the code range),
// "tiles.written", "cells.written", "tiles.run" (tiles run), "vectors.run", and the timing and
// energy counters of TimingModel (Cost::AddTo: "cycles", "cycles.device", "cycles.link",
// "energy.*_pj", "array.cell_cycles_*", ...). RunTile commands run one after another; RunLayer
// runs the tiles of different macros in parallel (device cycles = the busiest macro).
//
// Not thread-safe. Never reads the wall clock.
class SimBackend : public runtime::Backend {
 public:
  static absl::StatusOr<std::unique_ptr<SimBackend>> Create(const SimParams& params);

  const runtime::ChipInfo& info() const override { return info_; }
  absl::Status WriteTile(const runtime::TileImage& image) override;
  absl::Status ConfigureAdc(uint32_t tile_id, const runtime::AdcSetting& setting) override;
  absl::Status RunTile(uint32_t tile_id, const runtime::InputBatch& inputs,
                       absl::Span<int16_t> codes) override;
  absl::StatusOr<runtime::Counters> ReadCounters() override;
  absl::Status LoadLayer(const runtime::LayerMapping& layer) override;
  absl::Status RunLayer(const runtime::LayerMapping& layer, const runtime::InputBatch& inputs,
                        absl::Span<int32_t> sums) override;

  const SimParams& params() const { return params_; }

 private:
  explicit SimBackend(const SimParams& params);

  // The transfer curve of (macro, column) at `bits`, built once.
  absl::StatusOr<const ColumnCurve*> Curve(int macro, int column, int bits);
  // True when every tile of `layer` is stored with the layer's ADC setting.
  bool LayerResident(const runtime::LayerMapping& layer) const;

  struct StoredTile {
    runtime::TileImage image;
    std::optional<runtime::AdcSetting> adc;
  };

  SimParams params_;
  runtime::ChipInfo info_;
  std::map<uint32_t, StoredTile> tiles_;
  AdcModel adc_;
  TimingModel timing_;
  std::map<std::tuple<int, int, int>, ColumnCurve> curves_;
  struct LoadedLayer {
    const runtime::LayerMapping* mapping = nullptr;
    std::unique_ptr<FusedLayer> fused;
  };
  std::map<std::string, LoadedLayer> layers_;  // by layer name
  std::vector<int> active_bank_;               // per macro; bank 0 after reset
  Cost cost_;
  uint64_t macs_ = 0;
  uint64_t conversions_ = 0;
  uint64_t saturations_ = 0;
  uint64_t tiles_written_ = 0;
  uint64_t cells_written_ = 0;
  uint64_t tiles_run_ = 0;
  uint64_t vectors_run_ = 0;
};

// The registry factory for "sim" URIs: the chip comes from `profile=<file>` (a chip file, see
// sim/chips), else from options.target (the Program's target), else from the default chip file.
// `profile=` may also name a bundled chip file ("typical" -> sim/chips/typical.textproto); its
// profile (validated by ProfileFromProto) sets the ADC non-idealities, `seed=N` the noise seed.
absl::StatusOr<std::unique_ptr<runtime::Backend>> OpenSimBackend(const runtime::DeviceUri& uri,
                                                                 const runtime::OpenOptions& options);

}  // namespace pim::sim
