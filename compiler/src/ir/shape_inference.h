#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ir/graph.h"

namespace pim::compiler::ir {

// A resolved 2-D window (Conv, MaxPool, AveragePool) on an NCHW input.
struct Window2d {
  int kernel_h = 1, kernel_w = 1;
  int stride_h = 1, stride_w = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int dilation_h = 1, dilation_w = 1;
  int out_h = 0, out_w = 0;
};

// Resolves kernel, strides, pads (explicit or auto_pad), dilations and the output size of `node`
// on an input of spatial size in_h x in_w. `ceil_mode` applies to pools. Errors name the node.
absl::StatusOr<Window2d> ResolveWindow(const Node& node, int64_t in_h, int64_t in_w, int64_t kernel_h,
                                       int64_t kernel_w, bool ceil_mode);

// Shape of a value: an inferred activation shape or an initializer's dims.
absl::StatusOr<Shape> ShapeOf(const Graph& graph, const std::string& value);

// Fills graph.shapes and graph.types for every value the nodes produce (static shapes, batch
// dimension kBatch), checking each supported op's inputs, attributes and shapes. Errors name the
// node, its op type and the offending value.
absl::Status InferShapes(Graph& graph);

}  // namespace pim::compiler::ir
