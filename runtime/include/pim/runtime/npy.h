#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pim/runtime/tensor.h"

namespace pim::runtime {

// A numpy array read from .npy: its dtype ("<f4", "<f8", "|u1", "<i8", ...) and its values
// widened to double (exact for every float32/float64 and for integers up to 2^53).
struct NpyArray {
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<double> data;
};

// Parses .npy bytes (format 1.0, 2.0, 3.0; little-endian or byte-sized bool, int, uint and
// float dtypes; C order). Errors start with `origin` and say what is wrong: magic, header,
// dtype, Fortran order, shape, or data size.
absl::StatusOr<NpyArray> ParseNpy(const std::string& bytes, const std::string& origin);
absl::StatusOr<NpyArray> ReadNpy(const std::string& path);

// Writes `t` as a float32 C-order .npy (values rounded to nearest float).
absl::Status WriteNpyFloat32(const std::string& path, const Tensor& t);
// Serializes as WriteNpyFloat32 does.
std::string NpyFloat32Bytes(const Tensor& t);

// Reads every array of a .npz (a zip of .npy members, stored or deflated, zip64 allowed), keyed
// by member name without the ".npy" suffix.
absl::StatusOr<std::map<std::string, NpyArray>> ReadNpz(const std::string& path);

}  // namespace pim::runtime
