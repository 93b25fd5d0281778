// LowerGraph: the ONNX-level graph -> the step list (see passes.h for the contract).
#include <cmath>
#include <limits>
#include <set>

#include "absl/strings/str_cat.h"
#include "import/onnx_importer.h"
#include "ir/shape_inference.h"
#include "passes/passes.h"

namespace pim::compiler {
namespace {

using ir::Graph;
using ir::Node;
using ir::Tensor;

bool IsMatrixOp(const Node& node) {
  return node.domain.empty() && (node.op_type == "Conv" || node.op_type == "Gemm" || node.op_type == "MatMul");
}
bool IsQuant(const Node& node) { return node.domain == kQonnxDomain && node.op_type == "Quant"; }
bool IsDequantizeLinear(const Node& node) { return node.domain.empty() && node.op_type == "DequantizeLinear"; }
bool IsQuantizeLinear(const Node& node) { return node.domain.empty() && node.op_type == "QuantizeLinear"; }

std::string Where(const Node& node) { return absl::StrCat(node.name, " (", node.op_type, ")"); }

absl::Status Error(const Node& node, const std::string& message) {
  return absl::InvalidArgumentError(absl::StrCat(Where(node), ": ", message));
}

// Kernel, strides and pads of a resolved window into a ConvGeometry or PoolOp.
template <typename T>
void CopyWindow(const ir::Window2d& w, T* out) {
  out->kernel_h = w.kernel_h;
  out->kernel_w = w.kernel_w;
  out->stride_h = w.stride_h;
  out->stride_w = w.stride_w;
  out->pad_top = w.pad_top;
  out->pad_left = w.pad_left;
  out->pad_bottom = w.pad_bottom;
  out->pad_right = w.pad_right;
}

// Output axis of a matrix layer's weight in its ONNX layout.
int WeightOutputAxis(const Node& layer) {
  if (layer.op_type == "Conv") return 0;
  if (layer.op_type == "Gemm" && layer.IntAttr("transB", 0) != 0) return 0;
  return 1;  // [K, N]
}

// A scalar constant input of `node` (input i), or an error naming it.
absl::StatusOr<double> ScalarInput(const Graph& g, const Node& node, size_t i, const char* what) {
  const Tensor* t = g.FindInitializer(node.Input(i));
  if (t == nullptr) return Error(node, absl::StrCat(what, " '", node.Input(i), "' must be a constant"));
  if (t->numel() != 1) return Error(node, absl::StrCat(what, " must be a scalar (per-tensor), has ", t->numel(), " values"));
  return t->values[0];
}

absl::Status CheckScale(const Node& node, double s) {
  if (!(s > 0) || !std::isfinite(s)) return Error(node, absl::StrCat("scale ", s, " must be positive and finite"));
  return absl::OkStatus();
}

// Integer bit-width of a constant `bitwidth` input of Quant.
absl::StatusOr<int> QuantBits(const Graph& g, const Node& node) {
  absl::StatusOr<double> b = ScalarInput(g, node, 3, "bitwidth");
  if (!b.ok()) return b.status();
  if (*b != std::floor(*b) || *b < 1 || *b > 16) return Error(node, absl::StrCat("bitwidth ", *b, " must be an integer in 1..16"));
  return static_cast<int>(*b);
}

// Widest input codes a quantized matrix layer takes (a Program stores them as bytes).
constexpr int kMaxMatrixInputBits = 8;

// Integer codes feeding a quantized matrix layer.
struct CodesInfo {
  std::string codes;  // value holding X
  int bits = 8;       // b_a
  double scale = 1;   // s_x
};

// Quantized weight, in [O][K] layout.
struct WeightInfo {
  std::vector<int8_t> codes;
  std::vector<double> scale;  // size O or 1
  int bits = 0;
};

class Lowering {
 public:
  explicit Lowering(const Graph& g) : g_(g) {}

  absl::StatusOr<ir::Module> Run();

 private:
  absl::StatusOr<WeightInfo> ReadWeight(const Node& layer, int out, int k);
  absl::StatusOr<WeightInfo> ReadQdqWeight(const Node& layer, const Node& dq, int out, int k);
  absl::StatusOr<WeightInfo> ReadQonnxWeight(const Node& layer, const Node& quant, int out, int k);
  std::optional<CodesInfo> InputCodes(const std::string& value) const;
  absl::StatusOr<int> ActivationBits(const Node& quantize) const;
  absl::StatusOr<std::vector<double>> ConstantValues(const std::string& value, const Node& user) const;
  absl::Status LowerMatrix(const Node& node, ir::Module& m);
  absl::Status LowerHost(const Node& node, ir::Module& m);
  bool QuantizedLayer(const Node& node) const;

  const Graph& g_;
  std::map<std::string, CodesInfo> codes_;  // float value (DQ / Quant output) -> codes it dequantizes
  std::map<std::string, int> quantize_bits_;  // QuantizeLinear output -> b_a
};

bool Lowering::QuantizedLayer(const Node& node) const {
  if (!IsMatrixOp(node)) return false;
  const Node* w = g_.Producer(node.Input(1));
  const bool weight_quantized = w != nullptr && (IsDequantizeLinear(*w) || IsQuant(*w)) &&
                                g_.FindInitializer(w->Input(0)) != nullptr;
  return weight_quantized && InputCodes(node.Input(0)).has_value();
}

std::optional<CodesInfo> Lowering::InputCodes(const std::string& value) const {
  auto it = codes_.find(value);
  if (it == codes_.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<int> Lowering::ActivationBits(const Node& q) const {
  // b_a = log2(rne(M / s_x) + 1) for Clip(x, 0, M) directly before the quantizer, else 8.
  const Node* clip = g_.Producer(q.Input(0));
  if (clip == nullptr || clip->op_type != "Clip" || clip->Input(2).empty()) return 8;
  const Tensor* hi = g_.FindInitializer(clip->Input(2));
  if (hi == nullptr || hi->numel() != 1) return 8;
  absl::StatusOr<double> s = ScalarInput(g_, q, 1, "scale");
  if (!s.ok()) return s.status();
  const double levels = std::nearbyint(hi->values[0] / *s) + 1;
  for (int b = 1; b <= 8; ++b) {
    if (levels == std::ldexp(1.0, b)) return b;
  }
  return Error(q, absl::StrCat("activation range: Clip max ", hi->values[0], " / scale ", *s, " gives ", levels,
                               " levels, not a power of two in 2..256"));
}

absl::StatusOr<std::vector<double>> Lowering::ConstantValues(const std::string& value, const Node& user) const {
  if (const Tensor* t = g_.FindInitializer(value)) return t->values;
  const Node* dq = g_.Producer(value);
  if (dq != nullptr && IsDequantizeLinear(*dq)) {
    const Tensor* q = g_.FindInitializer(dq->Input(0));
    const Tensor* s = g_.FindInitializer(dq->Input(1));
    const Tensor* zp = dq->Input(2).empty() ? nullptr : g_.FindInitializer(dq->Input(2));
    if (q != nullptr && s != nullptr && (dq->Input(2).empty() || zp != nullptr) && q->dims.size() <= 1 &&
        (s->numel() == 1 || s->numel() == q->numel())) {
      std::vector<double> out(q->values.size());
      for (size_t i = 0; i < out.size(); ++i) {
        const double scale = s->values[s->numel() == 1 ? 0 : i];
        const double z = zp == nullptr ? 0 : zp->values[zp->numel() == 1 ? 0 : i];
        out[i] = (q->values[i] - z) * scale;
      }
      return out;
    }
  }
  return Error(user, absl::StrCat("input '", value, "' must be a constant"));
}

absl::StatusOr<WeightInfo> Lowering::ReadQdqWeight(const Node& layer, const Node& dq, int out, int k) {
  const Tensor* q = g_.FindInitializer(dq.Input(0));
  const Tensor* s = g_.FindInitializer(dq.Input(1));
  if (q->type != ir::ElemType::kInt8) {
    return Error(layer, absl::StrCat("weight codes '", dq.Input(0), "' are ", ir::ElemTypeName(q->type), ", int8 expected"));
  }
  if (s == nullptr) return Error(dq, "weight scale must be a constant");
  if (!dq.Input(2).empty()) {
    const Tensor* zp = g_.FindInitializer(dq.Input(2));
    if (zp == nullptr) return Error(dq, "weight zero point must be a constant");
    if (!zp->is_integer()) return Error(dq, absl::StrCat("weight zero point is ", ir::ElemTypeName(zp->type), ", int8 expected"));
    for (int64_t z : zp->ints) {
      if (z != 0) return Error(layer, absl::StrCat("weight zero point ", z, " (symmetric weights need 0)"));
    }
  }
  const int axis = WeightOutputAxis(layer);
  WeightInfo w;
  if (s->numel() == 1) {
    w.scale = {s->values[0]};
  } else {
    int64_t dq_axis = dq.IntAttr("axis", 1);
    if (dq_axis < 0) dq_axis += static_cast<int64_t>(q->dims.size());
    if (s->dims.size() != 1 || dq_axis != axis || s->numel() != out) {
      return Error(layer, absl::StrCat("per-channel weight scale (", s->numel(), " values in ", s->dims.size(),
                                       "-D, axis ", dq.IntAttr("axis", 1), ") must be 1-D along the output axis ", axis,
                                       " with ", out, " values"));
    }
    w.scale = s->values;
  }
  for (double v : w.scale) {
    if (absl::Status st = CheckScale(dq, v); !st.ok()) return st;
  }
  w.codes.resize(static_cast<size_t>(out) * k);
  int max_abs = 0;
  for (int o = 0; o < out; ++o) {
    for (int kk = 0; kk < k; ++kk) {
      const size_t src = axis == 0 ? static_cast<size_t>(o) * k + kk : static_cast<size_t>(kk) * out + o;
      const int64_t code = q->ints[src];
      if (code == -128) {
        return Error(layer, absl::StrCat("weight code -128 at output ", o, ", k ", kk,
                                         " (weights must be symmetric: codes in [-127, 127])"));
      }
      max_abs = std::max<int>(max_abs, static_cast<int>(std::abs(code)));
      w.codes[static_cast<size_t>(o) * k + kk] = static_cast<int8_t>(code);
    }
  }
  // b_w = 1 + ceil(log2(max|Q| + 1)); at least 2 (sign + one magnitude bit), which is also what
  // the Program loader accepts: an all-zero weight would otherwise get b_w = 1.
  int n = 0;
  while ((1 << n) < max_abs + 1) ++n;
  w.bits = std::max(2, 1 + n);
  return w;
}

absl::StatusOr<WeightInfo> Lowering::ReadQonnxWeight(const Node& layer, const Node& quant, int out, int k) {
  const Tensor* x = g_.FindInitializer(quant.Input(0));
  const Tensor* s = g_.FindInitializer(quant.Input(1));
  if (s == nullptr) return Error(quant, "scale must be a constant");
  absl::StatusOr<double> zp = ScalarInput(g_, quant, 2, "zeropt");
  if (!zp.ok()) return zp.status();
  absl::StatusOr<int> bits = QuantBits(g_, quant);
  if (!bits.ok()) return bits.status();
  if (quant.IntAttr("signed", 1) != 1 || quant.IntAttr("narrow", 0) != 1 || *zp != 0) {
    return Error(layer, "weight quantizer must be signed=1 narrow=1 with zeropt 0 (symmetric)");
  }
  if (quant.StringAttr("rounding_mode", "ROUND") != "ROUND") {
    return Error(quant, absl::StrCat("rounding_mode '", quant.StringAttr("rounding_mode", ""), "' (ROUND expected)"));
  }
  if (*bits < 2 || *bits > 8) return Error(layer, absl::StrCat("weight bitwidth ", *bits, " (2..8 supported)"));
  const int axis = WeightOutputAxis(layer);
  // The scale broadcasts against W (numpy rules); it may vary only along the output axis.
  const size_t rank = x->dims.size();
  if (s->dims.size() > rank) return Error(quant, "scale has a higher rank than the weight");
  const size_t lead = rank - s->dims.size();
  for (size_t i = 0; i < s->dims.size(); ++i) {
    const int64_t d = s->dims[i];
    if (d == 1) continue;
    if (static_cast<int>(lead + i) != axis || d != x->dims[lead + i]) {
      return Error(layer, absl::StrCat("weight scale of shape ", ir::ShapeString(s->dims),
                                       " must be a scalar or vary only along the output axis ", axis));
    }
  }
  WeightInfo w;
  w.bits = *bits;
  if (s->numel() == 1) {
    w.scale = {s->values[0]};
  } else {
    w.scale = s->values;  // size O, ordered along the output axis
  }
  for (double v : w.scale) {
    if (absl::Status st = CheckScale(quant, v); !st.ok()) return st;
  }
  const double qmax = std::ldexp(1.0, *bits - 1) - 1;
  w.codes.resize(static_cast<size_t>(out) * k);
  for (int o = 0; o < out; ++o) {
    const double scale = w.scale.size() == 1 ? w.scale[0] : w.scale[o];
    for (int kk = 0; kk < k; ++kk) {
      const size_t src = axis == 0 ? static_cast<size_t>(o) * k + kk : static_cast<size_t>(kk) * out + o;
      const double q = std::clamp(std::nearbyint(x->values[src] / scale), -qmax, qmax);
      w.codes[static_cast<size_t>(o) * k + kk] = static_cast<int8_t>(q);
    }
  }
  return w;
}

absl::StatusOr<WeightInfo> Lowering::ReadWeight(const Node& layer, int out, int k) {
  const Node* p = g_.Producer(layer.Input(1));
  if (p != nullptr && IsDequantizeLinear(*p) && g_.FindInitializer(p->Input(0))) return ReadQdqWeight(layer, *p, out, k);
  if (p != nullptr && IsQuant(*p) && g_.FindInitializer(p->Input(0))) return ReadQonnxWeight(layer, *p, out, k);
  return Error(layer, "weight is not a quantized constant");
}

absl::Status Lowering::LowerMatrix(const Node& node, ir::Module& m) {
  absl::StatusOr<ir::Shape> x = ir::ShapeOf(g_, node.Input(0));
  absl::StatusOr<ir::Shape> wshape = ir::ShapeOf(g_, node.Input(1));
  if (!x.ok() || !wshape.ok()) return Error(node, "operand shapes unknown");
  const ir::Shape& y = g_.shapes.at(node.outputs[0]);
  std::optional<ir::ConvGeometry> conv;
  ir::Shape spatial;
  int out = 0, k = 0;
  if (node.op_type == "Conv") {
    absl::StatusOr<ir::Window2d> win = ir::ResolveWindow(node, (*x)[2], (*x)[3], (*wshape)[2], (*wshape)[3], false);
    if (!win.ok()) return win.status();
    ir::ConvGeometry c;
    c.in_channels = static_cast<int>((*x)[1]);
    CopyWindow(*win, &c);
    c.dilation_h = win->dilation_h;
    c.dilation_w = win->dilation_w;
    conv = c;
    out = static_cast<int>((*wshape)[0]);
    k = static_cast<int>((*wshape)[1] * (*wshape)[2] * (*wshape)[3]);
    spatial = {y[2], y[3]};
  } else {
    out = static_cast<int>(y[1]);
    k = static_cast<int>((*x)[1]);
  }
  if (static_cast<int64_t>(out) * k > (int64_t{1} << 28)) return Error(node, "weight matrix too large");
  if (out < 1 || k < 1) return Error(node, absl::StrCat("weight matrix of ", out, " x ", k, " has no elements"));

  std::vector<double> bias;
  if (!node.Input(2).empty()) {
    absl::StatusOr<std::vector<double>> b = ConstantValues(node.Input(2), node);
    if (!b.ok()) return b.status();
    if (b->size() == 1) {
      bias.assign(out, (*b)[0]);
    } else if (static_cast<int>(b->size()) == out) {
      bias = *b;
    } else {
      return Error(node, absl::StrCat("bias has ", b->size(), " values, the layer has ", out, " outputs"));
    }
    for (size_t o = 0; o < bias.size(); ++o) {
      if (!std::isfinite(bias[o])) return Error(node, absl::StrCat("bias[", o, "] is ", bias[o]));
    }
  }

  ir::Step step;
  step.name = node.name;
  step.outputs = {node.outputs[0]};
  const Node* wp = g_.Producer(node.Input(1));
  const bool weight_quantized = wp != nullptr && (IsDequantizeLinear(*wp) || IsQuant(*wp)) &&
                                g_.FindInitializer(wp->Input(0)) != nullptr;
  std::optional<CodesInfo> codes = InputCodes(node.Input(0));

  if (weight_quantized && codes.has_value()) {
    if (codes->bits > kMaxMatrixInputBits) {
      return Error(node, absl::StrCat("input codes '", codes->codes, "' have ", codes->bits, " bits; a quantized matrix "
                                      "layer takes at most ", kMaxMatrixInputBits, " (docs/onnx-convention.md 2.1)"));
    }
    absl::StatusOr<WeightInfo> w = ReadWeight(node, out, k);
    if (!w.ok()) return w.status();
    ir::MatrixOp op;
    op.out_channels = out;
    op.reduction = k;
    op.conv = conv;
    op.weight_bits = w->bits;
    op.input_bits = codes->bits;
    op.weight_codes = std::move(w->codes);
    op.weight_scale = std::move(w->scale);
    op.input_scale = codes->scale;
    op.bias = std::move(bias);
    op.output_spatial = spatial;
    step.inputs = {codes->codes};
    step.op = std::move(op);
  } else {
    ir::FloatMatrixOp op;
    op.out_channels = out;
    op.reduction = k;
    op.conv = conv;
    op.bias = std::move(bias);
    op.weight.resize(static_cast<size_t>(out) * k);
    const int axis = WeightOutputAxis(node);
    auto put = [&](const std::vector<double>& values) {
      for (int o = 0; o < out; ++o) {
        for (int kk = 0; kk < k; ++kk) {
          const size_t src = axis == 0 ? static_cast<size_t>(o) * k + kk : static_cast<size_t>(kk) * out + o;
          op.weight[static_cast<size_t>(o) * k + kk] = values[src];
        }
      }
    };
    if (weight_quantized) {
      absl::StatusOr<WeightInfo> w = ReadWeight(node, out, k);
      if (!w.ok()) return w.status();
      // Dequantize in [O][K] order directly.
      for (int o = 0; o < out; ++o) {
        const double s = w->scale.size() == 1 ? w->scale[0] : w->scale[o];
        for (int kk = 0; kk < k; ++kk) {
          op.weight[static_cast<size_t>(o) * k + kk] = w->codes[static_cast<size_t>(o) * k + kk] * s;
        }
      }
      op.reason = "input is not quantized unsigned with zero point 0";
      op.weight_quantized = true;
    } else {
      const Tensor* wt = g_.FindInitializer(node.Input(1));
      if (wt == nullptr) return Error(node, absl::StrCat("weight '", node.Input(1), "' must be a constant"));
      put(wt->values);
      op.reason = "float layer (no quantizers)";
    }
    step.inputs = {node.Input(0)};
    step.op = std::move(op);
  }
  m.steps.push_back(std::move(step));
  return absl::OkStatus();
}

absl::Status Lowering::LowerHost(const Node& node, ir::Module& m) {
  ir::Step step;
  step.name = node.name;
  step.inputs = {node.Input(0)};
  step.outputs = {node.outputs[0]};
  const std::string& op = node.op_type;
  const ir::Shape& x = g_.shapes.count(node.Input(0)) ? g_.shapes.at(node.Input(0)) : ir::Shape{};

  if (op == "QuantizeLinear") {
    absl::StatusOr<double> s = ScalarInput(g_, node, 1, "scale");
    if (!s.ok()) return s.status();
    if (absl::Status st = CheckScale(node, *s); !st.ok()) return st;
    ir::QuantizeOp q;
    q.scale = *s;
    const bool is_signed = g_.types.at(node.outputs[0]) == ir::ElemType::kInt8;
    q.lo = is_signed ? -128 : 0;
    q.hi = is_signed ? 127 : 255;
    if (!node.Input(2).empty()) {
      absl::StatusOr<double> zp = ScalarInput(g_, node, 2, "zero point");
      if (!zp.ok()) return zp.status();
      q.zero_point = static_cast<int64_t>(*zp);
    }
    if (!is_signed && q.zero_point == 0) {
      absl::StatusOr<int> bits = ActivationBits(node);
      if (!bits.ok()) return bits.status();
      q.hi = (int64_t{1} << *bits) - 1;
      quantize_bits_[node.outputs[0]] = *bits;
    }
    step.op = q;
  } else if (op == "DequantizeLinear") {
    absl::StatusOr<double> s = ScalarInput(g_, node, 1, "scale");
    if (!s.ok()) return s.status();
    if (absl::Status st = CheckScale(node, *s); !st.ok()) return st;
    ir::DequantizeOp d;
    d.scale = *s;
    if (!node.Input(2).empty()) {
      absl::StatusOr<double> zp = ScalarInput(g_, node, 2, "zero point");
      if (!zp.ok()) return zp.status();
      d.zero_point = static_cast<int64_t>(*zp);
    }
    step.op = d;
  } else if (op == "BatchNormalization") {
    ir::BatchNormOp bn;
    bn.epsilon = node.FloatAttr("epsilon", 1e-5);
    std::vector<double>* dst[] = {&bn.scale, &bn.bias, &bn.mean, &bn.var};
    const char* names[] = {"scale", "B", "mean", "var"};
    for (int i = 0; i < 4; ++i) {
      const Tensor* t = g_.FindInitializer(node.Input(i + 1));
      if (t == nullptr) return Error(node, absl::StrCat(names[i], " must be a constant"));
      if (t->numel() != x[1]) return Error(node, absl::StrCat(names[i], " has ", t->numel(), " values, input has ", x[1], " channels"));
      *dst[i] = t->values;
    }
    for (double v : bn.var) {
      if (!(v + bn.epsilon > 0)) return Error(node, absl::StrCat("var + epsilon = ", v + bn.epsilon, " is not positive"));
    }
    step.op = std::move(bn);
  } else if (op == "Relu") {
    step.op = ir::ReluOp{};
  } else if (op == "Clip") {
    ir::ClipOp c;
    c.lo = -std::numeric_limits<double>::infinity();
    c.hi = std::numeric_limits<double>::infinity();
    for (int i = 1; i <= 2; ++i) {
      if (node.Input(i).empty()) continue;
      absl::StatusOr<double> v = ScalarInput(g_, node, i, i == 1 ? "min" : "max");
      if (!v.ok()) return v.status();
      (i == 1 ? c.lo : c.hi) = *v;
    }
    if (std::isnan(c.lo) || std::isnan(c.hi) || c.lo > c.hi) {
      return Error(node, absl::StrCat("range [", c.lo, ", ", c.hi, "] is empty or not a number"));
    }
    step.op = c;
  } else if (op == "Add") {
    for (int i = 0; i < 2; ++i) {
      if (g_.FindInitializer(node.Input(i))) {
        return Error(node, absl::StrCat("constant operand '", node.Input(i), "' is not supported (both operands must be activations)"));
      }
    }
    step.inputs = {node.Input(0), node.Input(1)};
    step.op = ir::AddOp{};
  } else if (op == "MaxPool" || op == "AveragePool") {
    std::vector<int64_t> ks = node.IntsAttr("kernel_shape");
    const bool ceil_mode = node.IntAttr("ceil_mode", 0) != 0;
    absl::StatusOr<ir::Window2d> win = ir::ResolveWindow(node, x[2], x[3], ks[0], ks[1], ceil_mode);
    if (!win.ok()) return win.status();
    ir::PoolOp p;
    p.kind = op == "MaxPool" ? ir::PoolOp::Kind::kMax : ir::PoolOp::Kind::kAverage;
    CopyWindow(*win, &p);
    p.ceil_mode = ceil_mode;
    p.count_include_pad = node.IntAttr("count_include_pad", 0) != 0;
    step.op = p;
  } else if (op == "GlobalAveragePool") {
    ir::PoolOp p;
    p.kind = ir::PoolOp::Kind::kGlobalAverage;
    p.kernel_h = static_cast<int>(x[2]);
    p.kernel_w = static_cast<int>(x[3]);
    step.op = p;
  } else if (op == "Flatten" || op == "Reshape") {
    step.op = ir::ReshapeOp{g_.shapes.at(node.outputs[0])};
  } else if (op == "Softmax") {
    int64_t axis = node.IntAttr("axis", -1);
    const int64_t rank = static_cast<int64_t>(x.size());
    if (axis < -rank || axis >= rank) return Error(node, absl::StrCat("axis ", axis, " out of range for rank ", rank));
    step.op = ir::SoftmaxOp{static_cast<int>(axis < 0 ? axis + rank : axis)};
  } else if (op == "Concat") {
    int64_t axis = node.IntAttr("axis", 1);
    if (axis < 0) axis += static_cast<int64_t>(x.size());
    step.inputs = node.inputs;
    step.op = ir::ConcatOp{static_cast<int>(axis)};
  } else {
    return Error(node, "unsupported op");
  }
  m.steps.push_back(std::move(step));
  return absl::OkStatus();
}

absl::StatusOr<ir::Module> Lowering::Run() {
  ir::Module m;
  m.inputs = g_.inputs;
  m.outputs = g_.outputs;
  m.metadata = g_.metadata;
  if (auto it = g_.metadata.find("pim.training"); it != g_.metadata.end()) m.training = it->second;
  m.shapes = g_.shapes;

  // Pass 1: which float values are dequantized codes a matrix layer can consume directly.
  for (const Node& node : g_.nodes) {
    if (IsDequantizeLinear(node) && !g_.FindInitializer(node.Input(0))) {
      const std::string& q = node.Input(0);
      const Node* producer = g_.Producer(q);
      const ir::ElemType type = g_.types.count(q) ? g_.types.at(q) : ir::ElemType::kOther;
      const Tensor* s = g_.FindInitializer(node.Input(1));
      const Tensor* zp = node.Input(2).empty() ? nullptr : g_.FindInitializer(node.Input(2));
      const bool zero = node.Input(2).empty() || (zp != nullptr && zp->numel() == 1 && zp->values[0] == 0);
      if (type != ir::ElemType::kUInt8 || !zero || s == nullptr || s->numel() != 1) continue;
      if (absl::Status st = CheckScale(node, s->values[0]); !st.ok()) return st;
      CodesInfo c;
      c.codes = q;
      c.scale = s->values[0];
      c.bits = 8;
      if (producer != nullptr && IsQuantizeLinear(*producer)) {
        absl::StatusOr<int> bits = ActivationBits(*producer);
        if (!bits.ok()) return bits.status();
        // A QuantizeLinear with a non-zero zero point does not give plain codes.
        const Tensor* qzp = producer->Input(2).empty() ? nullptr : g_.FindInitializer(producer->Input(2));
        if (qzp != nullptr && (qzp->numel() != 1 || qzp->values[0] != 0)) continue;
        // Convention 2.1: the pair shares one s_x; a different one would silently rescale X.
        const Tensor* qs = g_.FindInitializer(producer->Input(1));
        if (qs != nullptr && qs->numel() == 1 && qs->values[0] != c.scale) {
          return Error(node, absl::StrCat("scale ", c.scale, " differs from the scale ", qs->values[0], " of ",
                                          Where(*producer), "; an activation's quantize/dequantize pair shares one"));
        }
        c.bits = *bits;
      }
      codes_[node.outputs[0]] = c;
    } else if (IsQuant(node) && !g_.FindInitializer(node.Input(0))) {
      const Tensor* s = g_.FindInitializer(node.Input(1));
      const Tensor* zp = g_.FindInitializer(node.Input(2));
      absl::StatusOr<int> bits = QuantBits(g_, node);
      if (!bits.ok()) return bits.status();
      if (s == nullptr || zp == nullptr) return Error(node, "scale and zeropt must be constants");
      if (node.IntAttr("signed", 1) != 0 || zp->numel() != 1 || zp->values[0] != 0 || s->numel() != 1) continue;
      if (absl::Status st = CheckScale(node, s->values[0]); !st.ok()) return st;
      codes_[node.outputs[0]] = CodesInfo{node.outputs[0] + ":codes", *bits, s->values[0]};
    }
  }

  // Pass 2: emit steps. A dequantizer is skipped when every reader absorbs it.
  for (const Node& node : g_.nodes) {
    if (IsMatrixOp(node)) {
      if (absl::Status s = LowerMatrix(node, m); !s.ok()) return s;
      continue;
    }
    const bool constant_input = g_.FindInitializer(node.Input(0)) != nullptr;
    if ((IsDequantizeLinear(node) || IsQuant(node)) && constant_input) {
      // A weight (or bias) quantizer: matrix layers read it; nothing else may.
      for (const Node* user : g_.Consumers(node.outputs[0])) {
        if (!IsMatrixOp(*user) || user->Input(0) == node.outputs[0]) {
          return Error(node, absl::StrCat("constant quantizer output '", node.outputs[0], "' is read by ", Where(*user),
                                          "; only a matrix layer's weight or bias may be"));
        }
      }
      if (g_.IsGraphOutput(node.outputs[0])) return Error(node, "a constant quantizer output cannot be a graph output");
      continue;
    }
    if (constant_input) {
      return Error(node, absl::StrCat("data input '", node.Input(0), "' is a constant; host steps take activations"));
    }
    bool absorbed_by_all = !g_.IsGraphOutput(node.outputs[0]);
    for (const Node* user : g_.Consumers(node.outputs[0])) {
      if (!QuantizedLayer(*user) || user->Input(0) != node.outputs[0] || user->Input(1) == node.outputs[0]) {
        absorbed_by_all = false;
      }
    }
    if (IsDequantizeLinear(node)) {
      if (codes_.count(node.outputs[0]) && absorbed_by_all) continue;
      if (absl::Status s = LowerHost(node, m); !s.ok()) return s;
      continue;
    }
    if (IsQuant(node)) {
      absl::StatusOr<double> scale = ScalarInput(g_, node, 1, "scale");
      if (!scale.ok()) return scale.status();
      if (absl::Status st = CheckScale(node, *scale); !st.ok()) return st;
      absl::StatusOr<double> zp = ScalarInput(g_, node, 2, "zeropt");
      if (!zp.ok()) return zp.status();
      absl::StatusOr<int> bits = QuantBits(g_, node);
      if (!bits.ok()) return bits.status();
      if (node.StringAttr("rounding_mode", "ROUND") != "ROUND") {
        return Error(node, absl::StrCat("rounding_mode '", node.StringAttr("rounding_mode", ""), "' (ROUND expected)"));
      }
      if (*zp != std::floor(*zp)) return Error(node, absl::StrCat("zeropt ", *zp, " is not an integer"));
      const bool is_signed = node.IntAttr("signed", 1) != 0;
      const bool narrow = node.IntAttr("narrow", 0) != 0;
      ir::QuantizeOp q;
      q.scale = *scale;
      q.zero_point = static_cast<int64_t>(*zp);
      const int64_t half = int64_t{1} << (*bits - 1);
      q.lo = is_signed ? (narrow ? -(half - 1) : -half) : 0;
      q.hi = is_signed ? half - 1 : (int64_t{1} << *bits) - 1 - (narrow ? 1 : 0);
      const std::string codes = node.outputs[0] + ":codes";
      m.steps.push_back(ir::Step{node.name, {node.Input(0)}, {codes}, q});
      m.shapes[codes] = g_.shapes.at(node.outputs[0]);
      const bool absorbed = codes_.count(node.outputs[0]) && absorbed_by_all;
      if (!absorbed) {
        m.steps.push_back(ir::Step{node.name + ":dequantize", {codes}, {node.outputs[0]},
                                   ir::DequantizeOp{q.scale, q.zero_point}});
      }
      continue;
    }
    if (absl::Status s = LowerHost(node, m); !s.ok()) return s;
  }
  return m;
}

}  // namespace

absl::StatusOr<ir::Module> LowerGraph(const ir::Graph& graph) {
  Lowering lowering(graph);
  return lowering.Run();
}

}  // namespace pim::compiler
