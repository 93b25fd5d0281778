#include "pim/sim/noise.h"

#include <cmath>
#include <numbers>

namespace pim::sim {

double UniformOpen01(uint64_t key) {
  // 52 bits, offset by half a step: values in [2^-53, 1 - 2^-53], all exact doubles.
  return (static_cast<double>(key >> 12) + 0.5) * 0x1.0p-52;
}

double StandardNormal(uint64_t key) {
  const double u1 = UniformOpen01(Mix64(key ^ 0x243f6a8885a308d3ULL));
  const double u2 = UniformOpen01(Mix64(key ^ 0x13198a2e03707344ULL));
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

}  // namespace pim::sim
