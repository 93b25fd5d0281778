#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pim::runtime {

// A dense row-major host tensor of doubles (every host value is IEEE double, see
// docs/onnx-convention.md section 1). Dimension 0 is the batch.
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<double> data;

  Tensor() = default;
  Tensor(std::vector<int64_t> s, std::vector<double> d) : shape(std::move(s)), data(std::move(d)) {}
  explicit Tensor(std::vector<int64_t> s) : shape(std::move(s)), data(size_t(NumElements(shape)), 0.0) {}

  int64_t batch() const { return shape.empty() ? 0 : shape[0]; }
  // Elements per batch entry (product of dimensions 1..).
  int64_t sample_size() const;
  static int64_t NumElements(const std::vector<int64_t>& shape);
};

// "[2, 3, 4]"; a negative dimension prints as N.
std::string ShapeToString(const std::vector<int64_t>& shape);

// Samples [begin, end) of `t` along dimension 0.
Tensor SliceBatch(const Tensor& t, int64_t begin, int64_t end);

// Appends the samples of `part` to `whole` (same per-sample shape; `whole` may be empty).
void AppendBatch(Tensor& whole, const Tensor& part);

}  // namespace pim::runtime
