#include "import/tensor_reader.h"

#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"

namespace pim::compiler {
namespace {

size_t ElemSize(ir::ElemType type) {
  switch (type) {
    case ir::ElemType::kFloat: return 4;
    case ir::ElemType::kDouble: return 8;
    case ir::ElemType::kInt8: return 1;
    case ir::ElemType::kUInt8: return 1;
    case ir::ElemType::kInt32: return 4;
    case ir::ElemType::kInt64: return 8;
    default: return 0;
  }
}

// Little-endian raw_data element i as double and (for integers) int64.
void DecodeRaw(const std::string& raw, ir::ElemType type, size_t i, double* value, int64_t* integer) {
  const char* p = raw.data() + i * ElemSize(type);
  switch (type) {
    case ir::ElemType::kFloat: {
      float f;
      std::memcpy(&f, p, 4);
      *value = f;
      return;
    }
    case ir::ElemType::kDouble: std::memcpy(value, p, 8); return;
    case ir::ElemType::kInt8: *integer = static_cast<int8_t>(*p); break;
    case ir::ElemType::kUInt8: *integer = static_cast<uint8_t>(*p); break;
    case ir::ElemType::kInt32: {
      int32_t v;
      std::memcpy(&v, p, 4);
      *integer = v;
      break;
    }
    case ir::ElemType::kInt64: std::memcpy(integer, p, 8); break;
    default: return;
  }
  *value = static_cast<double>(*integer);
}

}  // namespace

ir::ElemType ElemTypeFromOnnx(int data_type) {
  switch (data_type) {
    case onnx::TensorProto_DataType_FLOAT: return ir::ElemType::kFloat;
    case onnx::TensorProto_DataType_DOUBLE: return ir::ElemType::kDouble;
    case onnx::TensorProto_DataType_INT8: return ir::ElemType::kInt8;
    case onnx::TensorProto_DataType_UINT8: return ir::ElemType::kUInt8;
    case onnx::TensorProto_DataType_INT32: return ir::ElemType::kInt32;
    case onnx::TensorProto_DataType_INT64: return ir::ElemType::kInt64;
    case onnx::TensorProto_DataType_UNDEFINED: return ir::ElemType::kUndefined;
    default: return ir::ElemType::kOther;
  }
}

namespace {

// The typed field a tensor without raw_data keeps its values in, and how many it holds.
std::pair<const char*, int> TypedFieldSize(const onnx::TensorProto& proto, ir::ElemType type) {
  switch (type) {
    case ir::ElemType::kFloat: return {"float_data", proto.float_data_size()};
    case ir::ElemType::kDouble: return {"double_data", proto.double_data_size()};
    case ir::ElemType::kInt64: return {"int64_data", proto.int64_data_size()};
    default: return {"int32_data", proto.int32_data_size()};  // int8, uint8, int32
  }
}

}  // namespace

absl::StatusOr<ir::Tensor> ReadTensor(const onnx::TensorProto& proto, const std::string& where) {
  if (proto.data_location() == onnx::TensorProto_DataLocation_EXTERNAL || proto.external_data_size() > 0) {
    return absl::UnimplementedError(absl::StrCat(
        where, ": external data is not supported; save the model with its weights inside the .onnx file"));
  }
  ir::Tensor t;
  t.type = ElemTypeFromOnnx(proto.data_type());
  if (ElemSize(t.type) == 0) {
    return absl::UnimplementedError(absl::StrCat(where, ": element type ", proto.data_type(),
                                                 " is not supported (float, double, int8, uint8, int32, int64)"));
  }
  int64_t count = 1;
  for (int64_t d : proto.dims()) {
    if (d < 0) return absl::InvalidArgumentError(absl::StrCat(where, ": negative dimension ", d));
    if (d != 0 && count > std::numeric_limits<int32_t>::max() / d) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": tensor too large"));
    }
    count *= d;
    t.dims.push_back(d);
  }
  const size_t n = static_cast<size_t>(count);
  // The stored data must match the shape before anything is allocated for it: a few bytes of
  // header could otherwise declare gigabytes.
  if (proto.has_raw_data() && proto.raw_data().size() != n * ElemSize(t.type)) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": raw_data holds ", proto.raw_data().size(),
                                                   " bytes, shape needs ", n * ElemSize(t.type)));
  }
  auto size_error = [&](const char* field, int have) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": ", field, " holds ", have, " values, shape needs ", n));
  };
  if (!proto.has_raw_data()) {
    const auto [field, have] = TypedFieldSize(proto, t.type);
    if (size_t(have) != n) return size_error(field, have);
  }
  t.values.resize(n);
  const bool integer = t.is_integer();
  if (integer) t.ints.resize(n);

  if (proto.has_raw_data()) {
    const std::string& raw = proto.raw_data();
    for (size_t i = 0; i < n; ++i) {
      int64_t v = 0;
      DecodeRaw(raw, t.type, i, &t.values[i], &v);
      if (integer) t.ints[i] = v;
    }
    return t;
  }

  switch (t.type) {
    case ir::ElemType::kFloat:
      if (static_cast<size_t>(proto.float_data_size()) != n) return size_error("float_data", proto.float_data_size());
      for (size_t i = 0; i < n; ++i) t.values[i] = proto.float_data(static_cast<int>(i));
      break;
    case ir::ElemType::kDouble:
      if (static_cast<size_t>(proto.double_data_size()) != n) return size_error("double_data", proto.double_data_size());
      for (size_t i = 0; i < n; ++i) t.values[i] = proto.double_data(static_cast<int>(i));
      break;
    case ir::ElemType::kInt8:
    case ir::ElemType::kUInt8:
    case ir::ElemType::kInt32: {
      if (static_cast<size_t>(proto.int32_data_size()) != n) return size_error("int32_data", proto.int32_data_size());
      const int64_t lo = t.type == ir::ElemType::kInt8 ? -128 : t.type == ir::ElemType::kUInt8 ? 0 : INT32_MIN;
      const int64_t hi = t.type == ir::ElemType::kInt8 ? 127 : t.type == ir::ElemType::kUInt8 ? 255 : INT32_MAX;
      for (size_t i = 0; i < n; ++i) {
        const int64_t v = proto.int32_data(static_cast<int>(i));
        if (v < lo || v > hi) {
          return absl::InvalidArgumentError(absl::StrCat(where, ": value ", v, " at index ", i, " is out of range for ",
                                                         ir::ElemTypeName(t.type)));
        }
        t.ints[i] = v;
        t.values[i] = static_cast<double>(v);
      }
      break;
    }
    case ir::ElemType::kInt64:
      if (static_cast<size_t>(proto.int64_data_size()) != n) return size_error("int64_data", proto.int64_data_size());
      for (size_t i = 0; i < n; ++i) {
        t.ints[i] = proto.int64_data(static_cast<int>(i));
        t.values[i] = static_cast<double>(t.ints[i]);
      }
      break;
    default:
      break;
  }
  return t;
}

}  // namespace pim::compiler
