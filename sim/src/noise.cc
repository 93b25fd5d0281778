#include "pim/sim/noise.h"

#include <cmath>
#include <numbers>

namespace pim::sim {

double StandardNormal(uint64_t key) {
  return std::sqrt(-2.0 * std::log(NormalRadiusUniform(key))) *
         std::cos(2.0 * std::numbers::pi * NormalAngleUniform(key));
}

}  // namespace pim::sim
