#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "ir/graph.h"

namespace pim::compiler {

// The domain of QONNX `Quant` nodes.
inline constexpr char kQonnxDomain[] = "qonnx.custom_op.general";

// Parses an ONNX model held in memory and turns it into an ir::Graph: checks it with
// onnx::checker, requires default-domain opset >= 13, refuses ops outside the convention
// (docs/onnx-convention.md section 4) by node name and op type, folds Constant nodes into
// initializers and reads every initializer. `origin` (the file name) prefixes every error.
// No exception escapes.
absl::StatusOr<ir::Graph> ImportOnnxModel(const std::string& bytes, const std::string& origin);

// Whether the importer accepts an op (domain "" means the default ONNX domain).
bool IsSupportedOp(const std::string& domain, const std::string& op_type);

}  // namespace pim::compiler
