#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "ir/graph.h"
#include "onnx/onnx_pb.h"

namespace pim::compiler {

// Reads an ONNX TensorProto (float, double, int8, uint8, int32, int64; raw_data or the typed
// fields) into an ir::Tensor. External data and other element types are refused; `where` names
// the tensor in errors ("initializer 'conv1_w'").
absl::StatusOr<ir::Tensor> ReadTensor(const onnx::TensorProto& proto, const std::string& where);

// Maps an ONNX TensorProto_DataType value to ElemType (kOther when not supported).
ir::ElemType ElemTypeFromOnnx(int data_type);

}  // namespace pim::compiler
