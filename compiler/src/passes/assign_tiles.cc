// AssignTiles: macro, bank and columns per tile; load phases when the chip is too small
// (see passes.h).
//
// The chip has macros x banks slots of `rows` x `columns` cells. Tiles never share columns
// within a slot and always start at row 0 (row_offset = 0), so each tile is driven on its own.
// Slot choice: the lowest bank that has room, and within it the macro with the most free
// columns (lowest index on ties), which spreads a layer's tiles over macros (they run in
// parallel) before stacking them into further banks (one bank of a macro is active at a time).
//
// Phases: layers are placed in order; a layer that does not fit in what is left of the current
// phase starts a new phase. A layer that does not fit on an empty chip is split at tile
// granularity over consecutive phases (the executor accumulates its S over phases; S is an
// integer sum over row groups, so the order does not matter).
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "passes/passes.h"

namespace pim::compiler {
namespace {

class SlotMap {
 public:
  explicit SlotMap(const runtime::ChipSpec& chip)
      : chip_(&chip), used_(static_cast<size_t>(chip.macros) * chip.banks_per_macro, 0) {}

  // Finds a slot for `columns`; false when nothing has room.
  bool Place(int columns, ir::Tile* tile) {
    for (int bank = 0; bank < chip_->banks_per_macro; ++bank) {
      int best = -1;
      for (int macro = 0; macro < chip_->macros; ++macro) {
        const int free = chip_->columns - used(macro, bank);
        if (free >= columns && (best < 0 || free > chip_->columns - used(best, bank))) best = macro;
      }
      if (best >= 0) {
        tile->macro = best;
        tile->bank = bank;
        tile->row_offset = 0;
        tile->column_offset = used(best, bank);
        used_[index(best, bank)] += columns;
        return true;
      }
    }
    return false;
  }

  bool empty() const {
    return std::all_of(used_.begin(), used_.end(), [](int u) { return u == 0; });
  }

 private:
  size_t index(int macro, int bank) const { return static_cast<size_t>(macro) * chip_->banks_per_macro + bank; }
  int used(int macro, int bank) const { return used_[index(macro, bank)]; }

  const runtime::ChipSpec* chip_;
  std::vector<int> used_;
};

}  // namespace

absl::Status AssignTiles(ir::Module& module, const PassContext& context) {
  const runtime::ChipSpec& chip = context.target;
  module.load_phases.clear();
  SlotMap slots(chip);
  ir::LoadPhase phase;
  phase.index = 0;

  auto close_phase = [&]() {
    module.load_phases.push_back(phase);
    phase = ir::LoadPhase{};
    phase.index = static_cast<int>(module.load_phases.size());
    slots = SlotMap(chip);
  };
  auto note_layer = [&](const std::string& name, const ir::Tile& t) {
    if (phase.layers.empty() || phase.layers.back() != name) phase.layers.push_back(name);
    phase.weight_cells += static_cast<uint64_t>(t.k_end - t.k_begin) * t.columns;
  };

  for (ir::Step& step : module.steps) {
    ir::MatrixOp* layer = step.matrix();
    if (layer == nullptr || layer->tiles.empty()) continue;
    for (const ir::Tile& t : layer->tiles) {
      if (t.columns > chip.columns || t.k_end - t.k_begin > chip.rows) {
        return absl::InternalError(absl::StrCat(step.name, ": tile ", t.id, " larger than a macro"));
      }
    }
    // Try the whole layer in the current phase; on failure, start a fresh phase.
    SlotMap trial = slots;
    std::vector<ir::Tile> placed = layer->tiles;
    bool fits = true;
    for (ir::Tile& t : placed) {
      if (!trial.Place(t.columns, &t)) {
        fits = false;
        break;
      }
    }
    if (!fits && !slots.empty()) {
      close_phase();
      trial = slots;
      placed = layer->tiles;
      fits = true;
      for (ir::Tile& t : placed) {
        if (!trial.Place(t.columns, &t)) {
          fits = false;
          break;
        }
      }
    }
    if (fits) {
      slots = trial;
      for (ir::Tile& t : placed) {
        t.load_phase = phase.index;
        note_layer(step.name, t);
      }
      layer->tiles = std::move(placed);
      continue;
    }
    // Larger than the whole chip: split over consecutive phases.
    for (ir::Tile& t : layer->tiles) {
      if (!slots.Place(t.columns, &t)) {
        close_phase();
        slots.Place(t.columns, &t);
      }
      t.load_phase = phase.index;
      note_layer(step.name, t);
    }
  }
  module.load_phases.push_back(phase);
  return absl::OkStatus();
}

}  // namespace pim::compiler
