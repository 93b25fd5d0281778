#include "ir/module.h"

#include <cstdlib>

namespace pim::compiler::ir {

const char* PlacementName(Placement placement) {
  return placement == Placement::kPim ? "pim" : "digital";
}

const char* AdcStepRuleName(AdcStepRule rule) {
  switch (rule) {
    case AdcStepRule::kTrained: return "trained";
    case AdcStepRule::kFullRange: return "full-range";
    case AdcStepRule::kOverride: return "override";
  }
  return "?";
}

int MatrixOp::max_abs_code() const {
  int m = 0;
  for (int8_t q : weight_codes) m = std::max(m, std::abs(static_cast<int>(q)));
  return m;
}

}  // namespace pim::compiler::ir
