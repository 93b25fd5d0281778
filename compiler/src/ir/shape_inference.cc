#include "ir/shape_inference.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "pim/runtime/program_file.h"

namespace pim::compiler::ir {
namespace {

std::string Where(const Node& node) { return absl::StrCat("node '", node.name, "' (", node.op_type, ")"); }

absl::Status Error(const Node& node, const std::string& message) {
  return absl::InvalidArgumentError(absl::StrCat(Where(node), ": ", message));
}

int64_t Product(const Shape& s, size_t from) {
  int64_t p = 1;
  for (size_t i = from; i < s.size(); ++i) p *= s[i];
  return p;
}

absl::StatusOr<Shape> Broadcast(const Node& node, const Shape& a, const Shape& b) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da == db || db == 1) {
      out[i] = da;
    } else if (da == 1) {
      out[i] = db;
    } else {
      return Error(node, absl::StrCat("shapes ", ShapeString(a), " and ", ShapeString(b), " do not broadcast"));
    }
  }
  return out;
}

int NormalizeAxis(int64_t axis, size_t rank) { return static_cast<int>(axis < 0 ? axis + static_cast<int64_t>(rank) : axis); }

}  // namespace

absl::StatusOr<Window2d> ResolveWindow(const Node& node, int64_t in_h, int64_t in_w, int64_t kernel_h,
                                       int64_t kernel_w, bool ceil_mode) {
  Window2d w;
  auto pick2 = [&](const char* key, int64_t fallback, int* a, int* b) -> absl::Status {
    std::vector<int64_t> v = node.IntsAttr(key);
    if (v.empty()) v = {fallback, fallback};
    if (v.size() != 2) return Error(node, absl::StrCat("'", key, "' needs 2 values (2-D only), has ", v.size()));
    if (v[0] < 1 || v[1] < 1 || v[0] > 4096 || v[1] > 4096) {
      return Error(node, absl::StrCat("'", key, "' values must be in 1..4096"));
    }
    *a = static_cast<int>(v[0]);
    *b = static_cast<int>(v[1]);
    return absl::OkStatus();
  };
  if (kernel_h < 1 || kernel_w < 1 || kernel_h > 4096 || kernel_w > 4096) {
    return Error(node, absl::StrCat("kernel ", kernel_h, "x", kernel_w, " out of range"));
  }
  w.kernel_h = static_cast<int>(kernel_h);
  w.kernel_w = static_cast<int>(kernel_w);
  if (absl::Status s = pick2("strides", 1, &w.stride_h, &w.stride_w); !s.ok()) return s;
  if (absl::Status s = pick2("dilations", 1, &w.dilation_h, &w.dilation_w); !s.ok()) return s;
  const std::string auto_pad = node.StringAttr("auto_pad", "NOTSET");
  const int64_t eff_h = static_cast<int64_t>(w.dilation_h) * (w.kernel_h - 1) + 1;
  const int64_t eff_w = static_cast<int64_t>(w.dilation_w) * (w.kernel_w - 1) + 1;
  if (auto_pad == "NOTSET") {
    std::vector<int64_t> pads = node.IntsAttr("pads");
    if (pads.empty()) pads = {0, 0, 0, 0};
    if (pads.size() != 4) return Error(node, absl::StrCat("'pads' needs 4 values, has ", pads.size()));
    for (int64_t p : pads) {
      if (p < 0 || p > 4096) return Error(node, absl::StrCat("pad ", p, " out of range"));
    }
    w.pad_top = static_cast<int>(pads[0]);
    w.pad_left = static_cast<int>(pads[1]);
    w.pad_bottom = static_cast<int>(pads[2]);
    w.pad_right = static_cast<int>(pads[3]);
  } else if (auto_pad == "VALID") {
  } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    auto same = [&](int64_t in, int stride, int64_t eff, int* begin, int* end) {
      const int64_t out = (in + stride - 1) / stride;
      const int64_t total = std::max<int64_t>((out - 1) * stride + eff - in, 0);
      const int64_t small = total / 2;
      *begin = static_cast<int>(auto_pad == "SAME_UPPER" ? small : total - small);
      *end = static_cast<int>(total - *begin);
    };
    same(in_h, w.stride_h, eff_h, &w.pad_top, &w.pad_bottom);
    same(in_w, w.stride_w, eff_w, &w.pad_left, &w.pad_right);
  } else {
    return Error(node, absl::StrCat("unknown auto_pad '", auto_pad, "'"));
  }
  auto out_size = [&](int64_t in, int pad_begin, int pad_end, int stride, int64_t eff) -> int64_t {
    const int64_t span = in + pad_begin + pad_end - eff;
    if (span < 0) return 0;
    int64_t out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
    // With ceil_mode the last window must start inside the input or its left padding.
    if (ceil_mode && (out - 1) * stride >= in + pad_begin) --out;
    return out;
  };
  const int64_t oh = out_size(in_h, w.pad_top, w.pad_bottom, w.stride_h, eff_h);
  const int64_t ow = out_size(in_w, w.pad_left, w.pad_right, w.stride_w, eff_w);
  if (oh < 1 || ow < 1) {
    return Error(node, absl::StrCat("window ", w.kernel_h, "x", w.kernel_w, " does not fit the input ", in_h, "x", in_w));
  }
  w.out_h = static_cast<int>(oh);
  w.out_w = static_cast<int>(ow);
  return w;
}

absl::StatusOr<Shape> ShapeOf(const Graph& graph, const std::string& value) {
  if (const Tensor* t = graph.FindInitializer(value)) return t->dims;
  auto it = graph.shapes.find(value);
  if (it != graph.shapes.end()) return it->second;
  for (const GraphInput& in : graph.inputs) {
    if (in.name == value) return in.shape;
  }
  return absl::InvalidArgumentError(absl::StrCat("value '", value, "' has no known shape"));
}

absl::Status InferShapes(Graph& graph) {
  for (const GraphInput& in : graph.inputs) {
    graph.shapes[in.name] = in.shape;
    graph.types[in.name] = in.type;
  }
  for (const Node& node : graph.nodes) {
    auto input_shape = [&](size_t i) -> absl::StatusOr<Shape> {
      if (node.Input(i).empty()) return Error(node, absl::StrCat("input ", i, " is missing"));
      absl::StatusOr<Shape> s = ShapeOf(graph, node.Input(i));
      if (!s.ok()) return Error(node, std::string(s.status().message()));
      return s;
    };
    absl::StatusOr<Shape> x = input_shape(0);
    if (!x.ok()) return x.status();
    Shape out = *x;
    ElemType type = ElemType::kFloat;
    const std::string& op = node.op_type;
    const size_t rank = x->size();

    if (op == "QuantizeLinear") {
      type = ElemType::kUInt8;
      if (!node.Input(2).empty()) {
        const Tensor* zp = graph.FindInitializer(node.Input(2));
        if (zp == nullptr) return Error(node, "zero point must be a constant");
        type = zp->type;
        if (type != ElemType::kUInt8 && type != ElemType::kInt8) {
          return Error(node, absl::StrCat("zero point type ", ElemTypeName(type), " (uint8 or int8 expected)"));
        }
      }
    } else if (op == "DequantizeLinear" || op == "Quant" || op == "Relu" || op == "Clip") {
      // Elementwise: shape unchanged.
    } else if (op == "Softmax") {
      const int axis = NormalizeAxis(node.IntAttr("axis", -1), rank);
      if (axis <= 0 || axis >= static_cast<int>(rank)) {
        return Error(node, absl::StrCat("axis ", node.IntAttr("axis", -1), " out of range (and not the batch)"));
      }
    } else if (op == "BatchNormalization") {
      if (rank < 2) return Error(node, absl::StrCat("input rank ", rank, " < 2"));
      if (node.IntAttr("training_mode", 0) != 0) return Error(node, "training_mode 1 is not supported (inference only)");
      if (node.outputs.size() > 1) return Error(node, "training-mode outputs are not supported");
    } else if (op == "Conv") {
      absl::StatusOr<Shape> w = input_shape(1);
      if (!w.ok()) return w.status();
      if (rank != 4 || w->size() != 4) {
        return Error(node, absl::StrCat("only 2-D convolution (NCHW) is supported; input ", ShapeString(*x),
                                        ", weight ", ShapeString(*w)));
      }
      if (node.IntAttr("group", 1) != 1) return Error(node, absl::StrCat("group ", node.IntAttr("group", 1), " (only 1 is supported)"));
      if ((*w)[1] != (*x)[1]) {
        return Error(node, absl::StrCat("weight has ", (*w)[1], " input channels, input has ", (*x)[1]));
      }
      std::vector<int64_t> ks = node.IntsAttr("kernel_shape");
      if (!ks.empty() && (ks.size() != 2 || ks[0] != (*w)[2] || ks[1] != (*w)[3])) {
        return Error(node, "kernel_shape does not match the weight");
      }
      absl::StatusOr<Window2d> win = ResolveWindow(node, (*x)[2], (*x)[3], (*w)[2], (*w)[3], false);
      if (!win.ok()) return win.status();
      out = {(*x)[0], (*w)[0], win->out_h, win->out_w};
    } else if (op == "Gemm" || op == "MatMul") {
      absl::StatusOr<Shape> w = input_shape(1);
      if (!w.ok()) return w.status();
      if (rank != 2 || w->size() != 2) {
        return Error(node, absl::StrCat("only 2-D operands are supported; A ", ShapeString(*x), ", B ", ShapeString(*w)));
      }
      if (op == "Gemm") {
        if (node.IntAttr("transA", 0) != 0) return Error(node, "transA = 1 is not supported");
        if (node.FloatAttr("alpha", 1.0) != 1.0 || node.FloatAttr("beta", 1.0) != 1.0) {
          return Error(node, "alpha and beta must be 1");
        }
      }
      const bool trans_b = op == "Gemm" && node.IntAttr("transB", 0) != 0;
      const int64_t k = trans_b ? (*w)[1] : (*w)[0];
      const int64_t n = trans_b ? (*w)[0] : (*w)[1];
      if (k != (*x)[1]) return Error(node, absl::StrCat("A has K = ", (*x)[1], ", B has K = ", k));
      out = {(*x)[0], n};
    } else if (op == "Add") {
      absl::StatusOr<Shape> b = input_shape(1);
      if (!b.ok()) return b.status();
      if (b->size() != rank) {
        // Broadcasting aligns the last dimensions: the batch of the shorter operand would meet a
        // feature dimension of the other.
        return Error(node, absl::StrCat("operands ", ShapeString(*x), " and ", ShapeString(*b),
                                        " differ in rank; both must keep the batch in dimension 0"));
      }
      absl::StatusOr<Shape> s = Broadcast(node, *x, *b);
      if (!s.ok()) return s.status();
      out = *s;
    } else if (op == "MaxPool" || op == "AveragePool") {
      if (rank != 4) return Error(node, absl::StrCat("only 2-D pooling (NCHW) is supported; input ", ShapeString(*x)));
      if (node.outputs.size() > 1 && !node.outputs[1].empty()) return Error(node, "the Indices output is not supported");
      if (node.IntAttr("storage_order", 0) != 0) return Error(node, "storage_order 1 is not supported");
      std::vector<int64_t> ks = node.IntsAttr("kernel_shape");
      if (ks.size() != 2) return Error(node, "kernel_shape needs 2 values");
      if (op == "AveragePool" && !node.IntsAttr("dilations").empty()) {
        for (int64_t d : node.IntsAttr("dilations")) {
          if (d != 1) return Error(node, "dilations are not supported for AveragePool");
        }
      }
      absl::StatusOr<Window2d> win = ResolveWindow(node, (*x)[2], (*x)[3], ks[0], ks[1], node.IntAttr("ceil_mode", 0) != 0);
      if (!win.ok()) return win.status();
      if (win->dilation_h != 1 || win->dilation_w != 1) return Error(node, "pooling dilations are not supported");
      out = {(*x)[0], (*x)[1], win->out_h, win->out_w};
    } else if (op == "GlobalAveragePool") {
      if (rank != 4) return Error(node, absl::StrCat("input ", ShapeString(*x), " is not NCHW"));
      out = {(*x)[0], (*x)[1], 1, 1};
    } else if (op == "Flatten") {
      const int axis = NormalizeAxis(node.IntAttr("axis", 1), rank);
      if (axis != 1) return Error(node, absl::StrCat("axis ", node.IntAttr("axis", 1), " (only 1 keeps the batch dimension)"));
      out = {(*x)[0], Product(*x, 1)};
    } else if (op == "Reshape") {
      const Tensor* shape = graph.FindInitializer(node.Input(1));
      if (shape == nullptr || shape->type != ElemType::kInt64) return Error(node, "the shape must be a constant int64 tensor");
      if (node.IntAttr("allowzero", 0) != 0) return Error(node, "allowzero = 1 is not supported");
      Shape target(shape->ints.begin(), shape->ints.end());
      if (target.empty()) return Error(node, "empty target shape");
      const int64_t per_sample = Product(*x, 1);
      for (size_t i = 0; i < target.size(); ++i) {
        if (target[i] == 0) {
          if (i >= rank) return Error(node, absl::StrCat("shape entry ", i, " copies a dimension the input lacks"));
          target[i] = (*x)[i];
        }
      }
      if (target[0] != kBatch) {
        return Error(node, absl::StrCat("the first dimension must stay the batch (0 or -1), got ", shape->ints[0]));
      }
      if (shape->ints[0] == -1 && std::count(shape->ints.begin() + 1, shape->ints.end(), -1) > 0) {
        return Error(node, "more than one -1 in the shape");
      }
      int64_t known = 1;
      int infer = -1;
      for (size_t i = 1; i < target.size(); ++i) {
        if (target[i] == -1) {
          if (infer >= 0) return Error(node, "more than one -1 in the shape");
          infer = static_cast<int>(i);
        } else if (target[i] < 1 || target[i] > runtime::kMaxSampleElements) {
          return Error(node, absl::StrCat("shape entry ", target[i], " is invalid"));
        } else {
          known *= target[i];  // both factors <= 2^28: no overflow
          if (known > runtime::kMaxSampleElements) {
            return Error(node, absl::StrCat("shape ", ShapeString(target), " has more than ",
                                            runtime::kMaxSampleElements, " elements per sample"));
          }
        }
      }
      if (infer >= 0) {
        if (per_sample % known != 0) return Error(node, "cannot infer the -1 dimension");
        target[infer] = per_sample / known;
        known = per_sample;
      }
      if (known != per_sample) {
        return Error(node, absl::StrCat("cannot reshape ", ShapeString(*x), " to ", ShapeString(target)));
      }
      out = target;
    } else if (op == "Concat") {
      if (!node.HasAttr("axis")) return Error(node, "axis is required");
      const int axis = NormalizeAxis(node.IntAttr("axis", 1), rank);
      if (axis <= 0 || axis >= static_cast<int>(rank)) return Error(node, absl::StrCat("axis ", node.IntAttr("axis", 1), " out of range (and not the batch)"));
      for (size_t i = 1; i < node.inputs.size(); ++i) {
        absl::StatusOr<Shape> s = input_shape(i);
        if (!s.ok()) return s.status();
        if (s->size() != rank) return Error(node, "inputs of different rank");
        for (size_t d = 0; d < rank; ++d) {
          if (static_cast<int>(d) != axis && (*s)[d] != (*x)[d]) {
            return Error(node, absl::StrCat("input '", node.inputs[i], "' shape ", ShapeString(*s), " does not match ", ShapeString(*x)));
          }
        }
        out[axis] += (*s)[axis];
      }
    } else {
      return Error(node, "no shape rule for this op");
    }
    // The sizes a Program may hold, on every inferred shape, so later products cannot overflow.
    if (absl::Status s = runtime::CheckSampleShape(out); !s.ok()) return Error(node, absl::StrCat("output ", s.message()));
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      if (node.outputs[i].empty()) continue;
      graph.shapes[node.outputs[i]] = out;
      graph.types[node.outputs[i]] = type;
    }
  }
  return absl::OkStatus();
}

}  // namespace pim::compiler::ir
