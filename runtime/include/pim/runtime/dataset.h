#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "pim/runtime/tensor.h"

namespace pim::runtime {

// An IDX file (the MNIST format), optionally gzip-compressed: element type code (0x08 ubyte,
// 0x09 byte, 0x0B short, 0x0C int, 0x0D float, 0x0E double), shape, values as double.
struct IdxArray {
  int type_code = 0;
  std::vector<int64_t> shape;
  std::vector<double> data;
};

// Reads an IDX file; ".gz" or not is detected from the content. Errors name the file and what is
// wrong (magic, type, truncated header, size that disagrees with the header).
absl::StatusOr<IdxArray> ReadIdx(const std::string& path);

// Model inputs from a file, as float values widened to double:
// - ".npy": float32 ("<f4"), C order; shape [N, ...].
// - anything else: IDX uint8 images [N, H, W] or [N, C, H, W], each value k becomes
//   float32(k) / float32(255) (as tools/qat/data.py does), shape [N, 1, H, W] for 3-D files.
absl::StatusOr<Tensor> ReadInputFile(const std::string& path);

// Class labels from an IDX file (rank 1, integer type) or a ".npy" of integers (rank 1).
absl::StatusOr<std::vector<int64_t>> ReadLabelFile(const std::string& path);

// Fits `t` to a model input shape [-1, d1, ...]: accepts an exact match of d1.. and also
// [N, H, W] for a model taking [N, 1, H, W]. Errors name `what`, the file shape and the model's.
absl::StatusOr<Tensor> FitToInputShape(Tensor t, const std::vector<int64_t>& model_shape, const std::string& what);

}  // namespace pim::runtime
