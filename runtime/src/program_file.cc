#include "pim/runtime/program_file.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/stubs/logging.h"
#include "pim/runtime/file_bytes.h"
#include "pim/runtime/tensor.h"
#include "pim/runtime/backend.h"
#include "pim/runtime/chip_spec.h"

namespace pim::runtime {
namespace {

constexpr size_t kMaxTiles = size_t(1) << 20;

using Shape = std::vector<int64_t>;

const char* KindName(const proto::Step& step) {
  switch (step.kind_case()) {
    case proto::Step::kQuantize: return "quantize";
    case proto::Step::kDequantize: return "dequantize";
    case proto::Step::kMatrix: return "matrix";
    case proto::Step::kBatchNorm: return "batch_norm";
    case proto::Step::kRelu: return "relu";
    case proto::Step::kClip: return "clip";
    case proto::Step::kAdd: return "add";
    case proto::Step::kPool: return "pool";
    case proto::Step::kReshape: return "reshape";
    case proto::Step::kSoftmax: return "softmax";
    case proto::Step::kConcat: return "concat";
    case proto::Step::kFloatMatrix: return "float_matrix";
    case proto::Step::KIND_NOT_SET: return "none";
  }
  return "unknown";
}

bool Finite(double v) { return std::isfinite(v); }

// Validation state for one Program. Each Check* returns the first error with its location.
class Validator {
 public:
  Validator(const proto::Program& program, std::string origin)
      : program_(program), origin_(std::move(origin)) {}

  absl::Status Run();
  ValueShapes TakeShapes() { return std::move(shapes_); }

 private:
  template <typename... Args>
  absl::Status Error(const Args&... args) const {
    return absl::InvalidArgumentError(absl::StrCat(origin_, ": ", where_, args...));
  }

  absl::Status CheckInputs();
  absl::Status CheckStep(int index, const proto::Step& step);
  absl::Status CheckShapeSize(const Shape& shape);
  absl::Status CheckConvOutput(const proto::ConvGeometry& conv, int64_t k, const Shape& in,
                               int64_t out_channels, Shape* out);
  absl::Status CheckMatrix(const proto::Step& step, const Shape& in, Shape* out);
  absl::Status CheckPim(const proto::Step& step);
  absl::Status CheckFloatMatrix(const proto::FloatMatrixStep& m, const Shape& in, Shape* out);
  absl::Status CheckPool(const proto::PoolStep& p, const Shape& in, Shape* out);
  absl::Status CheckBroadcast(const Shape& a, const Shape& b, Shape* out);
  absl::Status CheckPhases();
  absl::Status CheckPhysicalOverlap();
  absl::Status CheckBnCalibration();

  struct PlacedTile {
    const proto::Tile* tile;
    const std::string* layer;
  };

  const proto::Program& program_;
  std::string origin_;
  std::string where_;  // "step 'conv1' (#3): " while checking a step
  ChipSpec spec_;
  ValueShapes shapes_;
  std::set<uint32_t> tile_ids_;
  std::vector<PlacedTile> placed_;
  std::map<uint32_t, std::set<std::string>> layers_in_phase_;  // from the tiles
  std::set<std::string> pim_layers_;
};

absl::Status Validator::Run() {
  if (program_.format_version() != kProgramFormatVersion) {
    return Error("format_version is ", program_.format_version(), ", this runtime reads version ",
                 kProgramFormatVersion);
  }
  absl::StatusOr<ChipSpec> spec = ChipSpecFromProto(program_.target());
  if (!spec.ok()) return Error("target: ", spec.status().message());
  spec_ = *spec;
  if (absl::Status s = CheckInputs(); !s.ok()) return s;
  std::set<std::string> step_names;
  for (int i = 0; i < program_.steps_size(); ++i) {
    const proto::Step& step = program_.steps(i);
    where_ = absl::StrCat("step '", step.name(), "' (#", i, "): ");
    if (step.name().empty()) return Error("has no name");
    if (!step_names.insert(step.name()).second) return Error("step name used twice");
    if (absl::Status s = CheckStep(i, step); !s.ok()) return s;
  }
  where_.clear();
  if (program_.outputs_size() == 0) return Error("program has no outputs");
  for (const std::string& name : program_.outputs()) {
    if (!shapes_.count(name)) return Error("output '", name, "' is not produced by any step");
  }
  if (absl::Status s = CheckPhases(); !s.ok()) return s;
  if (absl::Status s = CheckPhysicalOverlap(); !s.ok()) return s;
  return CheckBnCalibration();
}

absl::Status Validator::CheckShapeSize(const Shape& shape) {
  if (shape.empty() || shape[0] != -1) {
    return Error("shape ", ShapeToString(shape), " must start with the batch dimension -1");
  }
  if (absl::Status s = CheckSampleShape(shape); !s.ok()) return Error(s.message());
  return absl::OkStatus();
}

absl::Status Validator::CheckInputs() {
  if (program_.inputs_size() == 0) return Error("program has no inputs");
  for (const proto::ValueInfo& input : program_.inputs()) {
    where_ = absl::StrCat("input '", input.name(), "': ");
    if (input.name().empty()) return Error("has no name");
    Shape shape(input.shape().begin(), input.shape().end());
    if (absl::Status s = CheckShapeSize(shape); !s.ok()) return s;
    if (!shapes_.emplace(input.name(), shape).second) return Error("defined twice");
  }
  where_.clear();
  return absl::OkStatus();
}

absl::Status Validator::CheckStep(int index, const proto::Step& step) {
  (void)index;
  size_t want_inputs = 1;
  switch (step.kind_case()) {
    case proto::Step::KIND_NOT_SET:
      return Error("has no kind (unknown step type or corrupted file)");
    case proto::Step::kAdd: want_inputs = 2; break;
    case proto::Step::kConcat: want_inputs = 0; break;
    default: break;
  }
  if (want_inputs != 0 && size_t(step.inputs_size()) != want_inputs) {
    return Error(KindName(step), " takes ", want_inputs, " input(s), has ", step.inputs_size());
  }
  if (step.kind_case() == proto::Step::kConcat && step.inputs_size() < 1) {
    return Error("concat has no inputs");
  }
  if (step.outputs_size() != 1) return Error(KindName(step), " has ", step.outputs_size(), " outputs, must have 1");
  std::vector<Shape> in;
  for (const std::string& name : step.inputs()) {
    auto it = shapes_.find(name);
    if (it == shapes_.end()) return Error("input '", name, "' is not defined before this step");
    in.push_back(it->second);
  }
  const Shape& x = in[0];
  Shape out = x;
  switch (step.kind_case()) {
    case proto::Step::kQuantize: {
      const proto::QuantizeStep& q = step.quantize();
      if (!Finite(q.scale()) || q.scale() <= 0) return Error("quantize scale is ", q.scale(), ", must be finite and > 0");
      const int64_t limit = int64_t(1) << 31;
      if (q.lo() > q.hi() || q.lo() < -limit || q.hi() > limit) {
        return Error("quantize range [", q.lo(), ", ", q.hi(), "] is empty or too wide");
      }
      if (q.zero_point() < -limit || q.zero_point() > limit) return Error("quantize zero_point is ", q.zero_point());
      break;
    }
    case proto::Step::kDequantize: {
      const proto::DequantizeStep& d = step.dequantize();
      if (!Finite(d.scale())) return Error("dequantize scale is ", d.scale());
      if (d.zero_point() < -(int64_t(1) << 31) || d.zero_point() > (int64_t(1) << 31)) {
        return Error("dequantize zero_point is ", d.zero_point());
      }
      break;
    }
    case proto::Step::kMatrix:
      if (absl::Status s = CheckMatrix(step, x, &out); !s.ok()) return s;
      break;
    case proto::Step::kBatchNorm: {
      const proto::BatchNormStep& bn = step.batch_norm();
      if (x.size() < 2) return Error("batch_norm input shape ", ShapeToString(x), " has no channel dimension");
      const int64_t c = x[1];
      if (bn.scale_size() != c || bn.bias_size() != c || bn.mean_size() != c || bn.var_size() != c) {
        return Error("batch_norm has ", bn.scale_size(), " scales, ", bn.bias_size(), " biases, ",
                     bn.mean_size(), " means, ", bn.var_size(), " variances for ", c, " channels");
      }
      if (!Finite(bn.epsilon()) || bn.epsilon() < 0) return Error("batch_norm epsilon is ", bn.epsilon());
      for (int64_t i = 0; i < c; ++i) {
        if (!Finite(bn.scale(i)) || !Finite(bn.bias(i)) || !Finite(bn.mean(i)) || !Finite(bn.var(i)) ||
            bn.var(i) < 0 || !(bn.var(i) + bn.epsilon() > 0)) {
          return Error("batch_norm channel ", i, ": scale ", bn.scale(i), ", bias ", bn.bias(i), ", mean ",
                       bn.mean(i), ", var ", bn.var(i), " (must be finite, var + epsilon > 0)");
        }
      }
      break;
    }
    case proto::Step::kRelu: break;
    case proto::Step::kClip:
      if (std::isnan(step.clip().lo()) || std::isnan(step.clip().hi()) || step.clip().lo() > step.clip().hi()) {
        return Error("clip range [", step.clip().lo(), ", ", step.clip().hi(), "] is empty");
      }
      break;
    case proto::Step::kAdd:
      if (absl::Status s = CheckBroadcast(in[0], in[1], &out); !s.ok()) return s;
      break;
    case proto::Step::kPool:
      if (absl::Status s = CheckPool(step.pool(), x, &out); !s.ok()) return s;
      break;
    case proto::Step::kReshape: {
      out.assign(step.reshape().shape().begin(), step.reshape().shape().end());
      if (absl::Status s = CheckShapeSize(out); !s.ok()) return s;
      int64_t a = 1, b = 1;
      for (size_t i = 1; i < x.size(); ++i) a *= x[i];
      for (size_t i = 1; i < out.size(); ++i) b *= out[i];
      if (a != b) {
        return Error("reshape from ", ShapeToString(x), " to ", ShapeToString(out), " changes the element count");
      }
      break;
    }
    case proto::Step::kSoftmax: {
      const int64_t rank = int64_t(x.size());
      const int64_t axis = step.softmax().axis();
      if (axis < -rank || axis >= rank || axis == 0 || axis == -rank) {
        return Error("softmax axis ", axis, " is not a non-batch axis of ", ShapeToString(x));
      }
      break;
    }
    case proto::Step::kConcat: {
      const int64_t rank = int64_t(x.size());
      int64_t axis = step.concat().axis();
      if (axis < -rank || axis >= rank || axis == 0 || axis == -rank) {
        return Error("concat axis ", axis, " is not a non-batch axis of ", ShapeToString(x));
      }
      if (axis < 0) axis += rank;
      for (size_t i = 1; i < in.size(); ++i) {
        bool ok = in[i].size() == x.size();
        for (size_t d = 0; ok && d < x.size(); ++d) ok = int64_t(d) == axis || in[i][d] == x[d];
        if (!ok) {
          return Error("concat input '", step.inputs(int(i)), "' shape ", ShapeToString(in[i]),
                       " does not match ", ShapeToString(x), " outside axis ", axis);
        }
        out[size_t(axis)] += in[i][size_t(axis)];
      }
      if (absl::Status s = CheckShapeSize(out); !s.ok()) return s;
      break;
    }
    case proto::Step::kFloatMatrix:
      if (absl::Status s = CheckFloatMatrix(step.float_matrix(), x, &out); !s.ok()) return s;
      break;
    case proto::Step::KIND_NOT_SET: break;
  }
  const std::string& name = step.outputs(0);
  if (name.empty()) return Error("output has no name");
  if (!shapes_.emplace(name, out).second) return Error("output '", name, "' is defined twice");
  return absl::OkStatus();
}

absl::Status Validator::CheckBroadcast(const Shape& a, const Shape& b, Shape* out) {
  const size_t rank = std::max(a.size(), b.size());
  out->assign(rank, 1);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i + a.size() >= rank ? a[i + a.size() - rank] : 1;
    const int64_t db = i + b.size() >= rank ? b[i + b.size() - rank] : 1;
    if (da != db && da != 1 && db != 1) {
      return Error("add shapes ", ShapeToString(a), " and ", ShapeToString(b), " do not broadcast");
    }
    (*out)[i] = da == 1 ? db : da;
  }
  if (a.size() != b.size() || (*out)[0] != -1) {
    return Error("add shapes ", ShapeToString(a), " and ", ShapeToString(b),
                 " must both have the batch dimension first");
  }
  return absl::OkStatus();
}

absl::Status Validator::CheckConvOutput(const proto::ConvGeometry& conv, int64_t k, const Shape& in,
                                        int64_t out_channels, Shape* out) {
  if (in.size() != 4) return Error("conv input shape ", ShapeToString(in), " is not [N, C, H, W]");
  if (in[1] != int64_t(conv.in_channels())) {
    return Error("conv input has ", in[1], " channels, layer expects ", conv.in_channels());
  }
  if (conv.kernel_h() < 1 || conv.kernel_w() < 1 || conv.stride_h() < 1 || conv.stride_w() < 1 ||
      conv.dilation_h() < 1 || conv.dilation_w() < 1 || conv.kernel_h() > kMaxDim ||
      conv.kernel_w() > kMaxDim || conv.pad_top() > kMaxDim || conv.pad_bottom() > kMaxDim ||
      conv.pad_left() > kMaxDim || conv.pad_right() > kMaxDim || conv.dilation_h() > kMaxDim ||
      conv.dilation_w() > kMaxDim) {
    return Error("conv kernel ", conv.kernel_h(), "x", conv.kernel_w(), ", stride ", conv.stride_h(), "x",
                 conv.stride_w(), ", dilation ", conv.dilation_h(), "x", conv.dilation_w(),
                 " out of range (each must be >= 1)");
  }
  if (int64_t(conv.in_channels()) * conv.kernel_h() * conv.kernel_w() != k) {
    return Error("conv C*kh*kw = ", conv.in_channels(), "*", conv.kernel_h(), "*", conv.kernel_w(),
                 " differs from the reduction K = ", k);
  }
  const int64_t eff_h = int64_t(conv.dilation_h()) * (conv.kernel_h() - 1) + 1;
  const int64_t eff_w = int64_t(conv.dilation_w()) * (conv.kernel_w() - 1) + 1;
  const int64_t span_h = in[2] + conv.pad_top() + conv.pad_bottom() - eff_h;
  const int64_t span_w = in[3] + conv.pad_left() + conv.pad_right() - eff_w;
  if (span_h < 0 || span_w < 0) {
    return Error("conv window ", eff_h, "x", eff_w, " is larger than the padded input ", ShapeToString(in));
  }
  *out = {-1, out_channels, span_h / conv.stride_h() + 1, span_w / conv.stride_w() + 1};
  return CheckShapeSize(*out);
}

absl::Status Validator::CheckMatrix(const proto::Step& step, const Shape& in, Shape* out) {
  const proto::MatrixLayer& m = step.matrix();
  const int64_t o = m.out_channels(), k = m.reduction();
  if (o < 1 || k < 1 || o > kMaxDim || k > kMaxDim) {
    return Error("matrix O = ", o, ", K = ", k, " (each must be in [1, ", kMaxDim, "])");
  }
  if (uint64_t(m.weight_codes().size()) != uint64_t(o) * uint64_t(k)) {
    return Error("weight_codes holds ", m.weight_codes().size(), " codes, O*K = ", o, "*", k, " = ", o * k);
  }
  if (m.weight_bits() < 2 || m.weight_bits() > 8) return Error("weight_bits is ", m.weight_bits(), ", must be in [2, 8]");
  if (m.input_bits() < 1 || m.input_bits() > 8) return Error("input_bits is ", m.input_bits(), ", must be in [1, 8]");
  const int qmax = (1 << (m.weight_bits() - 1)) - 1;
  for (size_t i = 0; i < m.weight_codes().size(); ++i) {
    const int q = int8_t(m.weight_codes()[i]);
    if (q < -qmax || q > qmax) {
      return Error("weight code [", i / size_t(k), ", ", i % size_t(k), "] is ", q, ", outside +-", qmax,
                   " for ", m.weight_bits(), "-bit weights");
    }
  }
  if (m.weight_scale_size() != o && m.weight_scale_size() != 1) {
    return Error("weight_scale has ", m.weight_scale_size(), " entries, must be O = ", o, " or 1");
  }
  for (double s : m.weight_scale()) {
    if (!Finite(s)) return Error("weight_scale entry is ", s);
  }
  if (!Finite(m.input_scale())) return Error("input_scale is ", m.input_scale());
  if (m.bias_size() != o && m.bias_size() != 0) {
    return Error("bias has ", m.bias_size(), " entries, must be O = ", o, " or 0");
  }
  for (double b : m.bias()) {
    if (!Finite(b)) return Error("bias entry is ", b);
  }
  if (m.has_conv()) {
    if (absl::Status s = CheckConvOutput(m.conv(), k, in, o, out); !s.ok()) return s;
  } else {
    if (in.size() != 2 || in[1] != k) {
      return Error("fully connected input shape ", ShapeToString(in), " is not [N, K = ", k, "]");
    }
    *out = {-1, o};
  }
  switch (m.placement()) {
    case proto::PIM: return CheckPim(step);
    case proto::DIGITAL: return absl::OkStatus();
    default:
      return Error("placement is ", int(m.placement()), ", must be PIM or DIGITAL");
  }
}

absl::Status Validator::CheckPim(const proto::Step& step) {
  const proto::MatrixLayer& m = step.matrix();
  const proto::PimMapping& p = m.pim();
  Scheme scheme;
  int max_input_bits = spec_.max_input_bits;
  switch (p.scheme()) {
    case proto::NATIVE: scheme = Scheme::kNative; break;
    case proto::DIFFERENTIAL: scheme = Scheme::kDifferential; break;
    case proto::BIT_SERIAL:
      scheme = Scheme::kBitSerial;
      max_input_bits = spec_.max_bit_serial_input_bits;
      break;
    default: return Error("pim.scheme is ", int(p.scheme()), ", must be NATIVE, DIFFERENTIAL or BIT_SERIAL");
  }
  if (p.adc_step_rule() < 0 || p.adc_step_rule() > proto::OVERRIDE) {
    return Error("pim.adc_step_rule is ", int(p.adc_step_rule()), ", not a known rule");
  }
  if (p.rows() < 1 || int64_t(p.rows()) > spec_.rows) {
    return Error("pim.rows R = ", p.rows(), ", chip '", spec_.name, "' has ", spec_.rows, " rows");
  }
  if (p.adc_bits() < 1 || int64_t(p.adc_bits()) > spec_.adc_bits) {
    return Error("pim.adc_bits = ", p.adc_bits(), ", chip '", spec_.name, "' ADC has 1..", spec_.adc_bits, " bits");
  }
  if (!(p.adc_step() >= kMinAdcStep && p.adc_step() <= kMaxAdcStep)) {
    return Error("pim.adc_step is ", p.adc_step(), ", must be in [", kMinAdcStep, ", ", kMaxAdcStep, "]");
  }
  if (int64_t(m.input_bits()) > max_input_bits) {
    return Error("input_bits = ", m.input_bits(), ", chip '", spec_.name, "' takes at most ", max_input_bits,
                 " with scheme ", SchemeName(scheme));
  }
  if (int64_t(m.weight_bits()) > spec_.max_weight_bits) {
    return Error("weight_bits = ", m.weight_bits(), ", chip '", spec_.name, "' stores at most ", spec_.max_weight_bits);
  }
  if (p.tiles_size() == 0) return Error("PIM layer has no tiles");
  if (size_t(p.tiles_size()) + placed_.size() > kMaxTiles) return Error("more than ", kMaxTiles, " tiles");
  const int64_t o = m.out_channels(), k = m.reduction(), r = p.rows();
  const int per_weight = ColumnsPerWeight(scheme, int(m.weight_bits()), spec_.cell_bits);
  std::vector<uint8_t> covered(size_t(o) * size_t(k), 0);
  for (const proto::Tile& t : p.tiles()) {
    const std::string at = absl::StrCat("tile ", t.id(), ": ");
    if (!tile_ids_.insert(t.id()).second) return Error(at, "tile id used twice in the program");
    if (t.k_begin() >= t.k_end() || t.k_end() > k || t.out_begin() >= t.out_end() || t.out_end() > o) {
      return Error(at, "rows [", t.k_begin(), ", ", t.k_end(), ") x outputs [", t.out_begin(), ", ",
                   t.out_end(), ") are empty or outside the ", o, " x ", k, " layer");
    }
    if (t.row_group() != t.k_begin() / r || int64_t(t.k_end()) > (int64_t(t.row_group()) + 1) * r) {
      return Error(at, "rows [", t.k_begin(), ", ", t.k_end(), ") are not inside row group ", t.row_group(),
                   " (R = ", r, ")");
    }
    const int64_t rows = t.k_end() - t.k_begin(), outs = t.out_end() - t.out_begin();
    if (int64_t(t.macro()) >= spec_.macros || int64_t(t.bank()) >= spec_.banks_per_macro) {
      return Error(at, "macro ", t.macro(), ", bank ", t.bank(), " outside chip '", spec_.name, "' (",
                   spec_.macros, " macros x ", spec_.banks_per_macro, " banks)");
    }
    if (int64_t(t.columns()) != outs * per_weight) {
      return Error(at, "uses ", t.columns(), " columns, ", outs, " outputs of ", m.weight_bits(), "-bit ",
                   SchemeName(scheme), " weights take ", outs * per_weight);
    }
    if (int64_t(t.row_offset()) + rows > spec_.rows || int64_t(t.column_offset()) + t.columns() > spec_.columns) {
      return Error(at, "rows [", t.row_offset(), ", ", int64_t(t.row_offset()) + rows, ") x columns [",
                   t.column_offset(), ", ", int64_t(t.column_offset()) + t.columns(), ") outside the ",
                   spec_.rows, " x ", spec_.columns, " macro");
    }
    if (t.load_phase() >= uint32_t(program_.load_phases_size())) {
      return Error(at, "load_phase ", t.load_phase(), " but the program has ", program_.load_phases_size(),
                   " load phases");
    }
    for (int64_t oo = t.out_begin(); oo < t.out_end(); ++oo) {
      uint8_t* row = covered.data() + size_t(oo) * size_t(k);
      for (int64_t kk = t.k_begin(); kk < t.k_end(); ++kk) {
        if (row[kk]) return Error(at, "weight [", oo, ", ", kk, "] is already held by another tile");
        row[kk] = 1;
      }
    }
    placed_.push_back({&t, &step.name()});
    layers_in_phase_[t.load_phase()].insert(step.name());
  }
  for (size_t i = 0; i < covered.size(); ++i) {
    if (!covered[i]) return Error("weight [", i / size_t(k), ", ", i % size_t(k), "] is in no tile");
  }
  pim_layers_.insert(step.name());
  return absl::OkStatus();
}

absl::Status Validator::CheckFloatMatrix(const proto::FloatMatrixStep& m, const Shape& in, Shape* out) {
  const int64_t o = m.out_channels(), k = m.reduction();
  if (o < 1 || k < 1 || o > kMaxDim || k > kMaxDim) return Error("float_matrix O = ", o, ", K = ", k);
  if (uint64_t(m.weight_size()) != uint64_t(o) * uint64_t(k)) {
    return Error("float_matrix weight holds ", m.weight_size(), " values, O*K = ", o * k);
  }
  if (m.bias_size() != o && m.bias_size() != 0) {
    return Error("float_matrix bias has ", m.bias_size(), " entries, must be O = ", o, " or 0");
  }
  for (double w : m.weight()) {
    if (!Finite(w)) return Error("float_matrix weight value is ", w);
  }
  for (double b : m.bias()) {
    if (!Finite(b)) return Error("float_matrix bias value is ", b);
  }
  if (m.has_conv()) return CheckConvOutput(m.conv(), k, in, o, out);
  if (in.size() != 2 || in[1] != k) {
    return Error("fully connected input shape ", ShapeToString(in), " is not [N, K = ", k, "]");
  }
  *out = {-1, o};
  return absl::OkStatus();
}

absl::Status Validator::CheckPool(const proto::PoolStep& p, const Shape& in, Shape* out) {
  if (in.size() != 4) return Error("pool input shape ", ShapeToString(in), " is not [N, C, H, W]");
  switch (p.kind()) {
    case proto::PoolStep::GLOBAL_AVERAGE:
      *out = {-1, in[1], 1, 1};
      return absl::OkStatus();
    case proto::PoolStep::MAX:
    case proto::PoolStep::AVERAGE: break;
    default: return Error("pool kind is ", int(p.kind()), ", must be MAX, AVERAGE or GLOBAL_AVERAGE");
  }
  if (p.kernel_h() < 1 || p.kernel_w() < 1 || p.stride_h() < 1 || p.stride_w() < 1 ||
      p.kernel_h() > kMaxDim || p.kernel_w() > kMaxDim || p.pad_top() >= p.kernel_h() ||
      p.pad_bottom() >= p.kernel_h() || p.pad_left() >= p.kernel_w() || p.pad_right() >= p.kernel_w()) {
    return Error("pool kernel ", p.kernel_h(), "x", p.kernel_w(), ", stride ", p.stride_h(), "x", p.stride_w(),
                 ", pads ", p.pad_top(), ",", p.pad_left(), ",", p.pad_bottom(), ",", p.pad_right(),
                 " out of range (kernel, stride >= 1, each pad < kernel)");
  }
  int64_t dims[2];
  const int64_t size[2] = {in[2], in[3]};
  const int64_t kernel[2] = {p.kernel_h(), p.kernel_w()};
  const int64_t stride[2] = {p.stride_h(), p.stride_w()};
  const int64_t pad0[2] = {p.pad_top(), p.pad_left()};
  const int64_t pad1[2] = {p.pad_bottom(), p.pad_right()};
  for (int a = 0; a < 2; ++a) {
    const int64_t span = size[a] + pad0[a] + pad1[a] - kernel[a];
    if (span < 0) return Error("pool window ", kernel[a], " is larger than the padded input ", ShapeToString(in));
    int64_t n = (p.ceil_mode() ? (span + stride[a] - 1) / stride[a] : span / stride[a]) + 1;
    // As ONNX and PyTorch: with ceil_mode the last window must start inside the input or its
    // leading padding.
    if (p.ceil_mode() && (n - 1) * stride[a] >= size[a] + pad0[a]) --n;
    dims[a] = n;
  }
  *out = {-1, in[1], dims[0], dims[1]};
  return CheckShapeSize(*out);
}

absl::Status Validator::CheckPhases() {
  where_.clear();
  for (int i = 0; i < program_.load_phases_size(); ++i) {
    const proto::LoadPhase& phase = program_.load_phases(i);
    if (phase.index() != uint32_t(i)) return Error("load_phases[", i, "] has index ", phase.index());
    const std::set<std::string>& resident = layers_in_phase_[uint32_t(i)];
    std::set<std::string> listed(phase.layers().begin(), phase.layers().end());
    for (const std::string& name : listed) {
      if (!pim_layers_.count(name)) return Error("load phase ", i, " lists '", name, "', not a PIM matrix layer");
      if (!resident.count(name)) return Error("load phase ", i, " lists '", name, "' but none of its tiles");
    }
    for (const std::string& name : resident) {
      if (!listed.count(name)) return Error("layer '", name, "' has tiles in load phase ", i, " that does not list it");
    }
  }
  return absl::OkStatus();
}

absl::Status Validator::CheckPhysicalOverlap() {
  // Bucket by (phase, macro, bank), sweep by column; only tiles sharing columns are compared.
  std::vector<PlacedTile> tiles = placed_;
  auto key = [](const proto::Tile& t) { return std::make_tuple(t.load_phase(), t.macro(), t.bank(), t.column_offset()); };
  std::sort(tiles.begin(), tiles.end(), [&](const PlacedTile& a, const PlacedTile& b) { return key(*a.tile) < key(*b.tile); });
  for (size_t i = 0; i < tiles.size(); ++i) {
    const proto::Tile& a = *tiles[i].tile;
    const int64_t a_col_end = int64_t(a.column_offset()) + a.columns();
    const int64_t a_row_end = int64_t(a.row_offset()) + (a.k_end() - a.k_begin());
    for (size_t j = i + 1; j < tiles.size(); ++j) {
      const proto::Tile& b = *tiles[j].tile;
      if (b.load_phase() != a.load_phase() || b.macro() != a.macro() || b.bank() != a.bank() ||
          int64_t(b.column_offset()) >= a_col_end) {
        break;
      }
      const int64_t b_row_end = int64_t(b.row_offset()) + (b.k_end() - b.k_begin());
      if (int64_t(b.row_offset()) < a_row_end && int64_t(a.row_offset()) < b_row_end) {
        return Error("tiles ", a.id(), " (layer '", *tiles[i].layer, "') and ", b.id(), " (layer '",
                     *tiles[j].layer, "') overlap in load phase ", a.load_phase(), " on macro ", a.macro(),
                     " bank ", a.bank());
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Validator::CheckBnCalibration() {
  if (!program_.has_bn_calibration()) return absl::OkStatus();
  where_ = "bn_calibration: ";
  const proto::BnCalibrationRecord& record = program_.bn_calibration();
  std::set<std::string> bn_steps, listed;
  for (const proto::Step& step : program_.steps()) {
    if (step.kind_case() == proto::Step::kBatchNorm) bn_steps.insert(step.name());
  }
  for (int i = 0; i < record.layers_size(); ++i) {
    const std::string& name = record.layers(i);
    if (!bn_steps.count(name)) {
      return Error("layers[", i, "] '", absl::CHexEscape(name.substr(0, 64)), "' is not a batch_norm step");
    }
    if (!listed.insert(name).second) return Error("layers[", i, "] '", name, "' is listed twice");
  }
  if (record.has_adc_calibration()) {
    // The hash is what pimrun compares a --calibration file against; anything else cannot match.
    const std::string& hash = record.adc_calibration().sha256();
    const bool hex = hash.size() == 64 && std::all_of(hash.begin(), hash.end(), [](char c) {
                       return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                     });
    if (!hex) {
      return Error("adc_calibration.sha256 '", absl::CHexEscape(hash.substr(0, 80)),
                   "' is not a SHA-256 (64 lowercase hex digits)");
    }
    if (record.adc_calibration().path().empty()) return Error("adc_calibration.path is empty");
  }
  where_.clear();
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckSampleShape(const std::vector<int64_t>& shape) {
  int64_t elements = 1;
  for (size_t i = 1; i < shape.size(); ++i) {
    if (shape[i] < 1 || shape[i] > kMaxDim) {
      return absl::InvalidArgumentError(absl::StrCat("shape ", ShapeToString(shape), ": dimension ", i, " is ",
                                                     shape[i], ", must be in [1, ", kMaxDim, "]"));
    }
    elements *= shape[i];  // <= 2^28 * 2^24 before the check: no overflow
    if (elements > kMaxSampleElements) {
      return absl::InvalidArgumentError(absl::StrCat("shape ", ShapeToString(shape), " has more than ",
                                                     kMaxSampleElements, " elements per sample"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateProgram(const proto::Program& program, const std::string& origin) {
  Validator validator(program, origin);
  return validator.Run();
}

absl::StatusOr<ValueShapes> InferValueShapes(const proto::Program& program) {
  Validator validator(program, "program");
  if (absl::Status s = validator.Run(); !s.ok()) return s;
  return validator.TakeShapes();
}

absl::StatusOr<proto::Program> ParseProgram(const std::string& bytes, const std::string& origin) {
  proto::Program program;
  if (bytes.empty()) return absl::InvalidArgumentError(absl::StrCat(origin, ": empty file, not a Program (.pimb)"));
  // A corrupted file is reported once, by the status below; protobuf's own log line (e.g. about
  // invalid UTF-8 in a name) would be a second, less clear message.
  google::protobuf::LogSilencer silence;
  if (!program.ParseFromString(bytes)) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ": not a Program (.pimb): the protobuf encoding is corrupted (", bytes.size(), " bytes)"));
  }
  if (absl::Status s = ValidateProgram(program, origin); !s.ok()) return s;
  return program;
}

absl::StatusOr<proto::Program> ReadProgramFile(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFileBytes(path, "Program file");
  if (!bytes.ok()) return bytes.status();
  return ParseProgram(*bytes, path);
}

}  // namespace pim::runtime
