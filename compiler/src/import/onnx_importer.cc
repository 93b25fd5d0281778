#include "import/onnx_importer.h"

#include <exception>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "import/tensor_reader.h"
#include "onnx/checker.h"
#include "onnx/onnx_pb.h"
#include "pim/runtime/program_file.h"

namespace pim::compiler {
namespace {

bool IsDefaultDomain(const std::string& domain) { return domain.empty() || domain == "ai.onnx"; }

absl::StatusOr<ir::Attribute> ReadAttribute(const onnx::AttributeProto& a) {
  ir::Attribute out;
  switch (a.type()) {
    case onnx::AttributeProto_AttributeType_INT:
      out.kind = ir::Attribute::Kind::kInt;
      out.i = a.i();
      break;
    case onnx::AttributeProto_AttributeType_FLOAT:
      out.kind = ir::Attribute::Kind::kFloat;
      out.f = a.f();
      break;
    case onnx::AttributeProto_AttributeType_STRING:
      out.kind = ir::Attribute::Kind::kString;
      out.s = a.s();
      break;
    case onnx::AttributeProto_AttributeType_INTS:
      out.kind = ir::Attribute::Kind::kInts;
      out.ints.assign(a.ints().begin(), a.ints().end());
      break;
    case onnx::AttributeProto_AttributeType_FLOATS:
      out.kind = ir::Attribute::Kind::kFloats;
      out.floats.assign(a.floats().begin(), a.floats().end());
      break;
    default:
      out.kind = ir::Attribute::Kind::kOther;
      break;
  }
  return out;
}

// Constant node -> tensor (value, value_float(s), value_int(s)).
absl::StatusOr<ir::Tensor> ConstantValue(const onnx::NodeProto& node, const std::string& where) {
  for (const onnx::AttributeProto& a : node.attribute()) {
    ir::Tensor t;
    if (a.name() == "value") return ReadTensor(a.t(), where);
    if (a.name() == "value_float") {
      t.type = ir::ElemType::kFloat;
      t.values = {a.f()};
      return t;
    }
    if (a.name() == "value_floats") {
      t.type = ir::ElemType::kFloat;
      t.dims = {a.floats_size()};
      t.values.assign(a.floats().begin(), a.floats().end());
      return t;
    }
    if (a.name() == "value_int" || a.name() == "value_ints") {
      t.type = ir::ElemType::kInt64;
      if (a.name() == "value_int") {
        t.ints = {a.i()};
      } else {
        t.dims = {a.ints_size()};
        t.ints.assign(a.ints().begin(), a.ints().end());
      }
      for (int64_t v : t.ints) t.values.push_back(static_cast<double>(v));
      return t;
    }
  }
  return absl::UnimplementedError(absl::StrCat(where, ": Constant without a supported value attribute"));
}

absl::Status RunChecker(onnx::ModelProto model, const std::string& origin) {
  // QONNX exporters do not always declare their domain; the checker needs an opset import for
  // every domain a node uses, so declare it on the copy we check.
  std::set<std::string> declared;
  for (const auto& op : model.opset_import()) declared.insert(op.domain());
  for (const auto& node : model.graph().node()) {
    if (node.domain() == kQonnxDomain && declared.insert(node.domain()).second) {
      auto* op = model.add_opset_import();
      op->set_domain(node.domain());
      op->set_version(1);
    }
  }
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    // The checker's messages span lines ("...\n\n==> Context: ..."); keep ours to one line.
    std::string message = absl::StrReplaceAll(e.what(), {{"\n\n==> Context: ", "; "}, {"\n", " "}});
    while (!message.empty() && message.back() == ' ') message.pop_back();
    return absl::InvalidArgumentError(absl::StrCat(origin, ": ONNX checker: ", message));
  } catch (...) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": ONNX checker failed"));
  }
  return absl::OkStatus();
}

absl::StatusOr<ir::Graph> Convert(const onnx::ModelProto& model, const std::string& origin) {
  ir::Graph g;
  g.source_path = origin;
  const onnx::GraphProto& graph = model.graph();
  g.name = graph.name();

  for (const auto& op : model.opset_import()) {
    if (IsDefaultDomain(op.domain())) g.opset = op.version();
  }
  if (g.opset < 13) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ": default-domain opset ", g.opset, " is too old; the convention needs opset 13 or later"));
  }
  for (const auto& entry : model.metadata_props()) g.metadata[entry.key()] = entry.value();

  for (const onnx::TensorProto& init : graph.initializer()) {
    const std::string where = absl::StrCat(origin, ": initializer '", init.name(), "'");
    absl::StatusOr<ir::Tensor> t = ReadTensor(init, where);
    if (!t.ok()) return t.status();
    g.initializers[init.name()] = *std::move(t);
  }
  if (graph.sparse_initializer_size() > 0) {
    return absl::UnimplementedError(absl::StrCat(origin, ": sparse initializers are not supported"));
  }

  for (const onnx::ValueInfoProto& in : graph.input()) {
    if (g.initializers.count(in.name())) continue;  // old exporters list initializers as inputs
    ir::GraphInput gi;
    gi.name = in.name();
    const std::string where = absl::StrCat(origin, ": graph input '", in.name(), "'");
    if (!in.type().has_tensor_type()) return absl::InvalidArgumentError(absl::StrCat(where, ": not a tensor"));
    const auto& tt = in.type().tensor_type();
    gi.type = ElemTypeFromOnnx(tt.elem_type());
    if (gi.type != ir::ElemType::kFloat && gi.type != ir::ElemType::kDouble && gi.type != ir::ElemType::kUInt8) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": element type ", ir::ElemTypeName(gi.type), " (float, double or uint8 expected)"));
    }
    if (!tt.has_shape() || tt.shape().dim_size() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": needs a static shape with a batch dimension"));
    }
    for (int d = 0; d < tt.shape().dim_size(); ++d) {
      const auto& dim = tt.shape().dim(d);
      if (d == 0) {
        gi.shape.push_back(ir::kBatch);
      } else if (dim.has_dim_value() && dim.dim_value() > 0) {
        gi.shape.push_back(dim.dim_value());
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ": dimension ", d, " is not a positive constant (only the batch dimension may be symbolic)"));
      }
    }
    if (absl::Status s = runtime::CheckSampleShape(gi.shape); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", s.message()));
    }
    g.inputs.push_back(std::move(gi));
  }
  for (const onnx::ValueInfoProto& out : graph.output()) g.outputs.push_back(out.name());
  if (g.outputs.empty()) return absl::InvalidArgumentError(absl::StrCat(origin, ": the graph has no output"));

  std::set<std::string> known;
  for (const auto& [name, t] : g.initializers) known.insert(name);
  for (const auto& in : g.inputs) known.insert(in.name);
  std::set<std::string> node_names;
  int index = 0;
  for (const onnx::NodeProto& node : graph.node()) {
    const std::string name = node.name().empty() ? absl::StrCat(node.op_type(), "#", index) : node.name();
    ++index;
    const std::string where = absl::StrCat(origin, ": node '", name, "' (", node.op_type(), ")");
    if (!IsSupportedOp(node.domain(), node.op_type())) {
      return absl::UnimplementedError(absl::StrCat(
          origin, ": node '", name, "': unsupported op ",
          node.domain().empty() ? "" : absl::StrCat(node.domain(), "."), node.op_type(),
          " (see docs/onnx-convention.md section 4 for the supported ops)"));
    }
    if (!node_names.insert(name).second) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": node name is not unique"));
    }
    for (const std::string& in : node.input()) {
      if (!in.empty() && !known.count(in)) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": input '", in, "' is not produced before it (graph not in topological order)"));
      }
    }
    if (node.op_type() == "Constant" && IsDefaultDomain(node.domain())) {
      if (node.output_size() != 1) return absl::InvalidArgumentError(absl::StrCat(where, ": needs one output"));
      absl::StatusOr<ir::Tensor> t = ConstantValue(node, where);
      if (!t.ok()) return t.status();
      g.initializers[node.output(0)] = *std::move(t);
      known.insert(node.output(0));
      continue;
    }
    if (node.output_size() < 1 || node.output(0).empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": has no output"));
    }
    ir::Node n;
    n.name = name;
    n.op_type = node.op_type();
    n.domain = IsDefaultDomain(node.domain()) ? "" : node.domain();
    n.inputs.assign(node.input().begin(), node.input().end());
    n.outputs.assign(node.output().begin(), node.output().end());
    for (const auto& a : node.attribute()) {
      absl::StatusOr<ir::Attribute> attr = ReadAttribute(a);
      if (!attr.ok()) return attr.status();
      n.attributes[a.name()] = *attr;
    }
    for (const std::string& out : n.outputs) {
      if (out.empty()) continue;
      if (!known.insert(out).second) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": value '", out, "' is produced twice"));
      }
    }
    g.nodes.push_back(std::move(n));
  }
  for (const std::string& out : g.outputs) {
    if (!known.count(out)) {
      return absl::InvalidArgumentError(absl::StrCat(origin, ": graph output '", out, "' is never produced"));
    }
  }
  // An input nothing reads would still be an input of the Program, which pimrun and pimcal
  // then refuse (they feed one); say so here, where it can be fixed.
  std::set<std::string> read(g.outputs.begin(), g.outputs.end());
  for (const ir::Node& n : g.nodes) read.insert(n.inputs.begin(), n.inputs.end());
  for (const ir::GraphInput& in : g.inputs) {
    if (!read.count(in.name)) {
      return absl::InvalidArgumentError(absl::StrCat(origin, ": graph input '", in.name,
                                                     "' is not read by any node (remove it from the model)"));
    }
  }
  if (g.inputs.size() > 1) {
    std::vector<std::string> names;
    for (const ir::GraphInput& in : g.inputs) names.push_back(absl::StrCat("'", in.name, "'"));
    return absl::InvalidArgumentError(absl::StrCat(origin, ": the graph has ", g.inputs.size(), " inputs (",
                                                   absl::StrJoin(names, ", "),
                                                   "); pimrun and pimcal feed a model exactly one"));
  }
  g.BuildIndex();
  return g;
}

}  // namespace

bool IsSupportedOp(const std::string& domain, const std::string& op_type) {
  static const std::set<std::string> kDefault = {
      "QuantizeLinear", "DequantizeLinear", "Conv", "Gemm", "MatMul", "BatchNormalization", "Relu",
      "Clip", "Add", "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten", "Reshape", "Softmax",
      "Concat", "Constant"};
  if (IsDefaultDomain(domain)) return kDefault.count(op_type) != 0;
  return domain == kQonnxDomain && op_type == "Quant";
}

absl::StatusOr<ir::Graph> ImportOnnxModel(const std::string& bytes, const std::string& origin) {
  onnx::ModelProto model;
  bool parsed = false;
  try {
    parsed = model.ParseFromString(bytes);
  } catch (...) {
    parsed = false;
  }
  if (!parsed) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ": not an ONNX model (the file is truncated or is not an ONNX protobuf)"));
  }
  if (!model.has_graph() || model.ir_version() <= 0 || model.opset_import_size() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ": not an ONNX model (no graph, IR version or opset import)"));
  }
  // Our own checks come first: they name the node, which the checker's messages do not always.
  absl::StatusOr<ir::Graph> graph = Convert(model, origin);
  if (!graph.ok()) return graph.status();
  if (absl::Status s = RunChecker(model, origin); !s.ok()) return s;
  return graph;
}

}  // namespace pim::compiler
