#pragma once

#include <cstdint>
#include <map>
#include <memory>

#include "pim/runtime/backend.h"

namespace pim::drivers::testing {

// A small, obviously-correct chip for the drivers' unit tests: tile MVM with the ideal ADC of
// docs/onnx-convention.md 3.1, plus a deterministic +-1 LSB "noise" that depends on (tile, output, plane,
// sample index), so a test fails when first_sample does not travel on the wire. Stands in for
// the simulator only where the drivers are under test; the HIL tests use the real SimBackend.
class ReferenceChip : public runtime::Backend {
 public:
  explicit ReferenceChip(runtime::ChipSpec spec, bool dither = true);

  const runtime::ChipInfo& info() const override { return info_; }
  absl::Status WriteTile(const runtime::TileImage& image) override;
  absl::Status ConfigureAdc(uint32_t tile_id, const runtime::AdcSetting& setting) override;
  absl::Status RunTile(uint32_t tile_id, const runtime::InputBatch& inputs,
                       absl::Span<int16_t> codes) override;
  absl::StatusOr<runtime::Counters> ReadCounters() override;

 private:
  struct Tile {
    runtime::TileImage image;
    runtime::AdcSetting adc;
    bool configured = false;
  };
  runtime::ChipInfo info_;
  bool dither_;
  std::map<uint32_t, Tile> tiles_;
  double conversions_ = 0;
};

// The default chip spec (sim/chips/default.textproto), read through the runtime's loader.
runtime::ChipSpec DefaultSpec();

}  // namespace pim::drivers::testing
