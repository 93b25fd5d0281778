#pragma once

#include <cstdint>

namespace pim::sim {

// Counter-based randomness for the simulator. Every random quantity is a pure function of a key
// (a profile seed plus the indices that name the event), so a result never depends on the order
// in which events are simulated, the batch size or the number of threads. Thread-safe (no state).

// splitmix64's finaliser: a bijective 64-bit mixer with full avalanche.
constexpr uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Folds one more field into a running key. Order matters: (a, b) and (b, a) give different keys.
constexpr uint64_t HashCombine(uint64_t key, uint64_t field) {
  return Mix64(key ^ Mix64(field + 0x9e3779b97f4a7c15ULL));
}

// The key of the thermal noise of one conversion: (profile seed, tile id, physical column in its
// macro, bit plane (0 unless bit_serial), global sample index). docs/chip-model.md 4. In two parts
// for callers that convert many samples on one column: ColumnNoiseKey once, then per sample
// SampleNoiseKey; ConversionNoiseKey is the two together (the same value).
constexpr uint64_t ColumnNoiseKey(uint64_t seed, uint32_t tile_id, uint32_t column, uint32_t plane) {
  const uint64_t k = HashCombine(Mix64(seed ^ 0x6e6f697365ULL /* "noise" */), tile_id);
  return HashCombine(k, (uint64_t{column} << 32) | plane);
}

constexpr uint64_t SampleNoiseKey(uint64_t column_key, uint64_t sample) { return HashCombine(column_key, sample); }

constexpr uint64_t ConversionNoiseKey(uint64_t seed, uint32_t tile_id, uint32_t column,
                                      uint32_t plane, uint64_t sample) {
  return SampleNoiseKey(ColumnNoiseKey(seed, tile_id, column, plane), sample);
}

// A uniform double in (0, 1) from a key (52 random bits, never 0 or 1): values in
// [2^-53, 1 - 2^-53], all exact doubles.
constexpr double UniformOpen01(uint64_t key) {
  return (static_cast<double>(key >> 12) + 0.5) * 0x1.0p-52;
}

// The two uniforms of StandardNormal's Box-Muller draw.
constexpr double NormalRadiusUniform(uint64_t key) { return UniformOpen01(Mix64(key ^ 0x243f6a8885a308d3ULL)); }
constexpr double NormalAngleUniform(uint64_t key) { return UniformOpen01(Mix64(key ^ 0x13198a2e03707344ULL)); }

// A standard normal deviate from a key: sqrt(-2 ln u1) cos(2 pi u2) (Box-Muller) with libm's log
// and cos. This is the definition of the simulator's noise; deterministic for a given key on a
// given libm, and every backend in one build calls this same function.
double StandardNormal(uint64_t key);

// How far an estimate of StandardNormal(key) may be from it for ColumnCurve::ConvertWithEstimate
// to return exactly what the definition would. The AVX2 kernel's polynomial log and cos
// (fused_kernel_avx2.cc) stay within 5.6e-15 on the kernel test's keys (4 million, and uniforms at
// every binade and at the cosine's reduction points), which checks 1e-12.
inline constexpr double kStandardNormalEstimateError = 1e-10;

}  // namespace pim::sim
