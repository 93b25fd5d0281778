#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pim/runtime/backend.h"
#include "pim/runtime/backend_registry.h"
#include "pim/runtime/chip_spec.h"
#include "pim/runtime/device_uri.h"

namespace pim::sim {

// Everything a SimBackend is built from (gem5-style params struct).
struct SimParams {
  runtime::ChipSpec spec;   // the chip modelled; must pass runtime::ChipSpecFromProto's ranges
  uint64_t seed = 0;        // noise seed (unused by the ideal model)
  std::string profile_name = "ideal";
};

// The simulated chip, ideal model: it stores tiles per (macro, bank) as written and runs
// MVM + ideal ADC exactly as DESIGN 3.3 says. RunTile is the reference the fast kernels are
// tested against; it favours obviousness over speed.
//
// Storage follows the hardware: writing a tile overwrites any tile that shared one of its cells
// in the same macro and bank (the old tile's id becomes unknown). Every command is validated
// (placement inside the chip, code ranges, sizes) and fails with a status naming the tile.
//
// Counters (cumulative): "xbar.macs" (weight x input products evaluated: rows x outputs per
// conversion), "adc.conversions", "adc.saturations" (conversions clamped to the code range),
// "tiles.written", "cells.written", "tiles.run" (RunTile calls), "vectors.run".
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

  const SimParams& params() const { return params_; }

 private:
  explicit SimBackend(const SimParams& params);

  struct StoredTile {
    runtime::TileImage image;
    std::optional<runtime::AdcSetting> adc;
  };

  SimParams params_;
  runtime::ChipInfo info_;
  std::map<uint32_t, StoredTile> tiles_;
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
// A profile with non-ideal parameters is refused (Unimplemented) until the non-ideal ADC model
// exists; it is never silently run as ideal.
absl::StatusOr<std::unique_ptr<runtime::Backend>> OpenSimBackend(const runtime::DeviceUri& uri,
                                                                 const runtime::OpenOptions& options);

}  // namespace pim::sim
