#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace pim::compiler::ir {

// Element types the importer distinguishes. Everything else is kOther (refused where it matters).
enum class ElemType { kUndefined, kFloat, kDouble, kInt8, kUInt8, kInt32, kInt64, kOther };

const char* ElemTypeName(ElemType type);

// Shape of a value; dimension 0 of an activation is the batch and is stored as kBatch.
using Shape = std::vector<int64_t>;
inline constexpr int64_t kBatch = -1;

std::string ShapeString(const Shape& shape);  // "[-1,4,8,8]"

// A constant tensor (ONNX initializer or Constant node), read once. Every element is widened to
// double (exact for all accepted types except int64 beyond 2^53); integer types are also kept
// exactly in `ints`.
struct Tensor {
  ElemType type = ElemType::kUndefined;
  Shape dims;
  std::vector<double> values;
  std::vector<int64_t> ints;  // integer types only, same order as `values`

  int64_t numel() const;
  bool is_integer() const;
};

// One ONNX attribute, reduced to the kinds the supported ops use.
struct Attribute {
  enum class Kind { kInt, kFloat, kString, kInts, kFloats, kOther };
  Kind kind = Kind::kOther;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::vector<int64_t> ints;
  std::vector<double> floats;
};

// One ONNX node as imported. Omitted optional inputs are "".
struct Node {
  std::string name;
  std::string op_type;
  std::string domain;  // "" for the default domain
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  std::map<std::string, Attribute> attributes;

  bool HasAttr(const std::string& key) const { return attributes.count(key) != 0; }
  int64_t IntAttr(const std::string& key, int64_t fallback) const;
  double FloatAttr(const std::string& key, double fallback) const;
  std::string StringAttr(const std::string& key, const std::string& fallback) const;
  std::vector<int64_t> IntsAttr(const std::string& key) const;  // empty when absent
  // Input i, or "" when absent.
  const std::string& Input(size_t i) const;
};

struct GraphInput {
  std::string name;
  ElemType type = ElemType::kUndefined;
  Shape shape;  // dim 0 is kBatch
};

// The ONNX-level graph: what the importer produces and shape inference annotates. Nodes are in
// topological order (ONNX requires it; the importer checks it). Value names are unique.
struct Graph {
  std::string name;
  std::string source_path;
  std::vector<Node> nodes;
  std::map<std::string, Tensor> initializers;
  std::vector<GraphInput> inputs;
  std::vector<std::string> outputs;
  std::map<std::string, std::string> metadata;  // metadata_props
  int64_t opset = 0;                            // default-domain opset

  // Filled by InferShapes: every non-initializer value's shape and element type.
  std::map<std::string, Shape> shapes;
  std::map<std::string, ElemType> types;

  const Tensor* FindInitializer(const std::string& value) const;
  // The node producing `value`, or nullptr (graph input, initializer, unknown).
  const Node* Producer(const std::string& value) const;
  // Nodes reading `value`, in graph order.
  std::vector<const Node*> Consumers(const std::string& value) const;
  bool IsGraphOutput(const std::string& value) const;

  // Rebuilds the producer/consumer index; call after changing `nodes`.
  void BuildIndex();

 private:
  std::map<std::string, size_t> producer_;
  std::map<std::string, std::vector<size_t>> consumers_;
};

}  // namespace pim::compiler::ir
