#include "ir/graph.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace pim::compiler::ir {

const char* ElemTypeName(ElemType type) {
  switch (type) {
    case ElemType::kUndefined: return "undefined";
    case ElemType::kFloat: return "float";
    case ElemType::kDouble: return "double";
    case ElemType::kInt8: return "int8";
    case ElemType::kUInt8: return "uint8";
    case ElemType::kInt32: return "int32";
    case ElemType::kInt64: return "int64";
    case ElemType::kOther: return "other";
  }
  return "?";
}

std::string ShapeString(const Shape& shape) { return absl::StrCat("[", absl::StrJoin(shape, ","), "]"); }

int64_t Tensor::numel() const { return static_cast<int64_t>(values.size()); }

bool Tensor::is_integer() const {
  return type == ElemType::kInt8 || type == ElemType::kUInt8 || type == ElemType::kInt32 ||
         type == ElemType::kInt64;
}

int64_t Node::IntAttr(const std::string& key, int64_t fallback) const {
  auto it = attributes.find(key);
  return it != attributes.end() && it->second.kind == Attribute::Kind::kInt ? it->second.i : fallback;
}

double Node::FloatAttr(const std::string& key, double fallback) const {
  auto it = attributes.find(key);
  return it != attributes.end() && it->second.kind == Attribute::Kind::kFloat ? it->second.f : fallback;
}

std::string Node::StringAttr(const std::string& key, const std::string& fallback) const {
  auto it = attributes.find(key);
  return it != attributes.end() && it->second.kind == Attribute::Kind::kString ? it->second.s : fallback;
}

std::vector<int64_t> Node::IntsAttr(const std::string& key) const {
  auto it = attributes.find(key);
  return it != attributes.end() && it->second.kind == Attribute::Kind::kInts ? it->second.ints
                                                                             : std::vector<int64_t>{};
}

const std::string& Node::Input(size_t i) const {
  static const std::string kEmpty;
  return i < inputs.size() ? inputs[i] : kEmpty;
}

const Tensor* Graph::FindInitializer(const std::string& value) const {
  auto it = initializers.find(value);
  return it == initializers.end() ? nullptr : &it->second;
}

const Node* Graph::Producer(const std::string& value) const {
  auto it = producer_.find(value);
  return it == producer_.end() ? nullptr : &nodes[it->second];
}

std::vector<const Node*> Graph::Consumers(const std::string& value) const {
  std::vector<const Node*> out;
  auto it = consumers_.find(value);
  if (it == consumers_.end()) return out;
  for (size_t i : it->second) out.push_back(&nodes[i]);
  return out;
}

bool Graph::IsGraphOutput(const std::string& value) const {
  return std::find(outputs.begin(), outputs.end(), value) != outputs.end();
}

void Graph::BuildIndex() {
  producer_.clear();
  consumers_.clear();
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (const std::string& out : nodes[i].outputs) {
      if (!out.empty()) producer_[out] = i;
    }
    for (const std::string& in : nodes[i].inputs) {
      if (in.empty()) continue;
      std::vector<size_t>& list = consumers_[in];
      if (list.empty() || list.back() != i) list.push_back(i);
    }
  }
}

}  // namespace pim::compiler::ir
