#include "pim/runtime/tensor.h"

#include "check.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace pim::runtime {

int64_t Tensor::NumElements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int64_t Tensor::sample_size() const {
  int64_t n = 1;
  for (size_t i = 1; i < shape.size(); ++i) n *= shape[i];
  return n;
}

std::string ShapeToString(const std::vector<int64_t>& shape) {
  std::vector<std::string> dims;
  for (int64_t d : shape) dims.push_back(d < 0 ? "N" : absl::StrCat(d));
  return absl::StrCat("[", absl::StrJoin(dims, ", "), "]");
}

Tensor SliceBatch(const Tensor& t, int64_t begin, int64_t end) {
  PIM_CHECK(!t.shape.empty() && begin >= 0 && begin <= end && end <= t.shape[0]);
  Tensor out;
  out.shape = t.shape;
  out.shape[0] = end - begin;
  const int64_t per = t.sample_size();
  out.data.assign(t.data.begin() + begin * per, t.data.begin() + end * per);
  return out;
}

void AppendBatch(Tensor& whole, const Tensor& part) {
  if (whole.shape.empty()) {
    whole = part;
    return;
  }
  PIM_CHECK(whole.shape.size() == part.shape.size());
  for (size_t i = 1; i < part.shape.size(); ++i) PIM_CHECK(whole.shape[i] == part.shape[i]);
  whole.shape[0] += part.shape[0];
  whole.data.insert(whole.data.end(), part.data.begin(), part.data.end());
}

}  // namespace pim::runtime
