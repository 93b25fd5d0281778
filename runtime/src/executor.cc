#include "pim/runtime/executor.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "check.h"
#include "log.h"
#include "pim/runtime/host_ops.h"
#include "pim/runtime/program_file.h"

namespace pim::runtime {
namespace {

using Clock = std::chrono::steady_clock;

ConvParams ConvFromProto(const proto::ConvGeometry& g) {
  ConvParams c;
  c.in_channels = int(g.in_channels());
  c.kernel_h = int(g.kernel_h());
  c.kernel_w = int(g.kernel_w());
  c.stride_h = int(g.stride_h());
  c.stride_w = int(g.stride_w());
  c.pad_top = int(g.pad_top());
  c.pad_left = int(g.pad_left());
  c.pad_bottom = int(g.pad_bottom());
  c.pad_right = int(g.pad_right());
  c.dilation_h = int(g.dilation_h());
  c.dilation_w = int(g.dilation_w());
  return c;
}

Scheme SchemeFromProto(proto::Scheme s) {
  switch (s) {
    case proto::DIFFERENTIAL: return Scheme::kDifferential;
    case proto::BIT_SERIAL: return Scheme::kBitSerial;
    default: return Scheme::kNative;
  }
}

Counters Delta(const Counters& after, const Counters& before) {
  Counters d;
  for (const auto& [name, value] : after) {
    auto it = before.find(name);
    d[name] = value - (it == before.end() ? 0.0 : it->second);
  }
  return d;
}

void AddCounters(Counters& into, const Counters& d) {
  for (const auto& [name, value] : d) into[name] += value;
}

}  // namespace

struct Executor::Impl {
  enum class Kind { kHost, kDigital, kPim };

  struct Segment {
    int phase = 0;
    LayerMapping mapping;
  };

  struct PlannedStep {
    const proto::Step* step = nullptr;
    Kind kind = Kind::kHost;
    std::vector<std::string> free_after;  // values last used by this step
    // The first input dies here and is used once by this step: an elementwise op may take it
    // over (moved, computed in place) instead of allocating its result.
    bool consumes_first_input = false;
    // Matrix layers.
    bool conv = false;
    ConvParams conv_params;
    int64_t o = 0, k = 0;
    std::vector<int8_t> codes;
    std::vector<double> weight_scale;  // size O
    std::vector<double> bias;          // size O or 0
    double input_scale = 1;
    double delta = 1;
    int input_bits = 0;
    std::vector<Segment> segments;     // PIM: one per load phase holding tiles of the layer
    PackedIntegerWeights packed;       // digital placement
    // Scratch reused across batches: input codes, im2col rows, the backend's sums.
    std::vector<uint8_t> x_codes, rows;
    std::vector<int32_t> part;
  };

  proto::Program program;
  Backend* backend = nullptr;
  ExecutorOptions options;
  ValueShapes shapes;
  std::vector<std::string> input_names;
  std::vector<PlannedStep> steps;
  std::map<int, std::vector<std::pair<size_t, size_t>>> phase_segments;  // phase -> (step, segment)
  int loaded_phase = -1;
  // What the loads done during the current step cost, to keep them out of the step's figures.
  double step_load_seconds = 0;
  Counters step_load_counters;

  absl::Status Plan();
  absl::Status CheckBackend() const;
  absl::Status EnsurePhase(int phase, std::vector<StepProfile>& profile);
  absl::StatusOr<Tensor> RunMatrix(PlannedStep& ps, const Tensor& x, int64_t first_image, Tensor* s_out,
                                   std::vector<StepProfile>& profile);
  absl::StatusOr<Tensor> RunStep(PlannedStep& ps, std::map<std::string, Tensor>& values, int64_t first_image,
                                 Tensor* s_out, std::vector<StepProfile>& profile);
};

absl::Status Executor::Impl::Plan() {
  absl::StatusOr<ValueShapes> inferred = InferValueShapes(program);
  if (!inferred.ok()) return inferred.status();
  shapes = std::move(*inferred);
  for (const proto::ValueInfo& in : program.inputs()) input_names.push_back(in.name());
  std::map<std::string, size_t> last_use;
  for (size_t i = 0; i < size_t(program.steps_size()); ++i) {
    for (const std::string& name : program.steps(int(i)).inputs()) last_use[name] = i;
  }
  const std::set<std::string> outputs(program.outputs().begin(), program.outputs().end());
  steps.resize(size_t(program.steps_size()));
  for (size_t i = 0; i < steps.size(); ++i) {
    PlannedStep& ps = steps[i];
    ps.step = &program.steps(int(i));
    for (const std::string& name : ps.step->inputs()) {
      if (last_use[name] == i && !outputs.count(name)) ps.free_after.push_back(name);
    }
    if (ps.step->inputs_size() > 0) {
      const std::string& first = ps.step->inputs(0);
      ps.consumes_first_input =
          std::count(ps.free_after.begin(), ps.free_after.end(), first) == 1 &&
          std::count(ps.step->inputs().begin(), ps.step->inputs().end(), first) == 1;
    }
    if (ps.step->kind_case() == proto::Step::kFloatMatrix) {
      const proto::FloatMatrixStep& m = ps.step->float_matrix();
      ps.conv = m.has_conv();
      if (ps.conv) ps.conv_params = ConvFromProto(m.conv());
      ps.o = m.out_channels();
      ps.k = m.reduction();
      continue;
    }
    if (ps.step->kind_case() != proto::Step::kMatrix) continue;
    const proto::MatrixLayer& m = ps.step->matrix();
    ps.conv = m.has_conv();
    if (ps.conv) ps.conv_params = ConvFromProto(m.conv());
    ps.o = m.out_channels();
    ps.k = m.reduction();
    ps.codes.assign(m.weight_codes().begin(), m.weight_codes().end());
    ps.weight_scale.assign(m.weight_scale().begin(), m.weight_scale().end());
    if (ps.weight_scale.size() == 1) ps.weight_scale.assign(size_t(ps.o), m.weight_scale(0));
    ps.bias.assign(m.bias().begin(), m.bias().end());
    ps.input_scale = m.input_scale();
    ps.input_bits = int(m.input_bits());
    if (m.placement() == proto::DIGITAL) {
      ps.kind = Kind::kDigital;
      ps.packed = PackIntegerWeights(ps.codes, ps.o, ps.k);
      continue;
    }
    ps.kind = Kind::kPim;
    const proto::PimMapping& pim = m.pim();
    ps.delta = pim.adc_step();
    std::map<int, size_t> by_phase;
    for (const proto::Tile& t : pim.tiles()) {
      const int phase = int(t.load_phase());
      if (!by_phase.count(phase)) {
        by_phase[phase] = ps.segments.size();
        Segment seg;
        seg.phase = phase;
        LayerMapping& l = seg.mapping;
        l.name = ps.step->name();
        l.out_channels = int(ps.o);
        l.reduction = int(ps.k);
        l.scheme = SchemeFromProto(pim.scheme());
        l.rows = int(pim.rows());
        l.adc_bits = int(pim.adc_bits());
        l.adc_step = pim.adc_step();
        l.weight_bits = int(m.weight_bits());
        l.input_bits = int(m.input_bits());
        l.weight_codes = ps.codes;
        ps.segments.push_back(std::move(seg));
      }
      TileSpec spec;
      spec.id = t.id();
      spec.row_group = int(t.row_group());
      spec.k_begin = int(t.k_begin());
      spec.k_end = int(t.k_end());
      spec.out_begin = int(t.out_begin());
      spec.out_end = int(t.out_end());
      spec.placement.macro = int(t.macro());
      spec.placement.bank = int(t.bank());
      spec.placement.row_offset = int(t.row_offset());
      spec.placement.column_offset = int(t.column_offset());
      spec.placement.columns = int(t.columns());
      spec.load_phase = phase;
      ps.segments[by_phase[phase]].mapping.tiles.push_back(spec);
    }
    for (size_t s = 0; s < ps.segments.size(); ++s) phase_segments[ps.segments[s].phase].push_back({i, s});
  }
  return absl::OkStatus();
}

absl::Status Executor::Impl::CheckBackend() const {
  if (phase_segments.empty()) return absl::OkStatus();
  if (backend == nullptr) {
    return absl::InvalidArgumentError("program has PIM layers but no device backend was given");
  }
  const ChipSpec& chip = backend->info().spec;
  const proto::ChipSpec& target = program.target();
  auto fail = [&](const char* field, int64_t have, int64_t need) {
    return absl::FailedPreconditionError(absl::StrCat("device '", backend->info().backend, "' chip '", chip.name,
                                                      "' has ", field, " = ", have, ", the program (compiled for '",
                                                      target.name(), "') needs ", need));
  };
  if (chip.cell_bits != int64_t(target.cell_bits())) return fail("cell_bits", chip.cell_bits, target.cell_bits());
  int64_t macros = 0, banks = 0, rows = 0, columns = 0, adc_bits = 0;
  for (const PlannedStep& ps : steps) {
    for (const Segment& seg : ps.segments) {
      adc_bits = std::max<int64_t>(adc_bits, seg.mapping.adc_bits);
      for (const TileSpec& t : seg.mapping.tiles) {
        macros = std::max<int64_t>(macros, t.placement.macro + 1);
        banks = std::max<int64_t>(banks, t.placement.bank + 1);
        rows = std::max<int64_t>(rows, t.placement.row_offset + t.rows());
        columns = std::max<int64_t>(columns, t.placement.column_offset + t.placement.columns);
      }
    }
  }
  if (chip.macros < macros) return fail("macros", chip.macros, macros);
  if (chip.banks_per_macro < banks) return fail("banks_per_macro", chip.banks_per_macro, banks);
  if (chip.rows < rows) return fail("rows", chip.rows, rows);
  if (chip.columns < columns) return fail("columns", chip.columns, columns);
  if (chip.adc_bits < adc_bits) return fail("adc_bits", chip.adc_bits, adc_bits);
  return absl::OkStatus();
}

absl::Status Executor::Impl::EnsurePhase(int phase, std::vector<StepProfile>& profile) {
  if (loaded_phase == phase) return absl::OkStatus();
  const Clock::time_point t0 = Clock::now();
  Counters before;
  if (options.profile) {
    absl::StatusOr<Counters> c = backend->ReadCounters();
    if (!c.ok()) return c.status();
    before = *c;
  }
  loaded_phase = -1;  // a failed load leaves no phase resident
  Logger()->debug("loading weights of phase {} ({} layer segments)", phase, phase_segments[phase].size());
  for (const auto& [step, segment] : phase_segments[phase]) {
    if (absl::Status s = backend->LoadLayer(steps[step].segments[segment].mapping); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("loading phase ", phase, ", layer '", steps[step].step->name(),
                                                 "': ", s.message()));
    }
  }
  loaded_phase = phase;
  const std::string name = absl::StrCat("load phase ", phase);
  auto it = std::find_if(profile.begin(), profile.end(), [&](const StepProfile& p) { return p.name == name; });
  if (it == profile.end()) {
    profile.push_back(StepProfile{name, "load", 0, 0, {}, 0});
    it = profile.end() - 1;
  }
  ++it->calls;
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  it->host_seconds += seconds;
  step_load_seconds += seconds;
  if (options.profile) {
    absl::StatusOr<Counters> after = backend->ReadCounters();
    if (!after.ok()) return after.status();
    const Counters d = Delta(*after, before);
    AddCounters(it->counters, d);
    AddCounters(step_load_counters, d);
  }
  return absl::OkStatus();
}

absl::StatusOr<Tensor> Executor::Impl::RunMatrix(PlannedStep& ps, const Tensor& x, int64_t first_image,
                                                 Tensor* s_out, std::vector<StepProfile>& profile) {
  const proto::Step& step = *ps.step;
  const int64_t n = x.batch();
  // The layer consumes integer codes: check them (while narrowing them to bytes) before anything
  // reaches a device.
  const int max_code = (1 << ps.input_bits) - 1;
  ps.x_codes.resize(x.data.size());
  if (const int64_t bad = ToCodes(x.data, max_code, ps.x_codes.data()); bad >= 0) {
    return absl::InvalidArgumentError(absl::StrCat("step '", step.name(), "': input '", step.inputs(0), "' holds ",
                                                   x.data[size_t(bad)], " at element ", bad,
                                                   ", not an integer code in [0, ", max_code, "] (", ps.input_bits,
                                                   "-bit input)"));
  }
  int64_t oh = 1, ow = 1;
  std::vector<uint8_t>* rows = &ps.x_codes;
  if (ps.conv) {
    oh = ps.conv_params.OutH(x.shape[2]);
    ow = ps.conv_params.OutW(x.shape[3]);
    ps.rows.resize(size_t(n * oh * ow * ps.k));
    Im2ColCodes(ps.x_codes.data(), n, x.shape[2], x.shape[3], ps.conv_params, ps.rows.data());
    rows = &ps.rows;
  }
  const int64_t l = oh * ow;
  const int64_t m_count = n * l;
  std::vector<int64_t> sums;
  std::vector<double> real_sums;  // with options.run_layer
  if (ps.kind == Kind::kDigital) {
    sums.resize(size_t(m_count * ps.o));
    IntegerGemm(rows->data(), m_count, ps.packed, sums.data());
  } else if (options.run_layer) {
    real_sums.assign(size_t(m_count * ps.o), 0.0);
    std::vector<double> part(real_sums.size());
    for (Segment& seg : ps.segments) {
      if (absl::Status s = EnsurePhase(seg.phase, profile); !s.ok()) return s;
      InputBatch batch{rows->data(), int(m_count), int(ps.k), ps.input_bits, uint64_t(first_image * l), true};
      if (absl::Status s = options.run_layer(*backend, seg.mapping, batch, absl::MakeSpan(part)); !s.ok()) {
        return absl::Status(s.code(), absl::StrCat("step '", step.name(), "': ", s.message()));
      }
      for (size_t i = 0; i < real_sums.size(); ++i) real_sums[i] += part[i];
    }
  } else {
    // One segment (the usual case): the backend's int32 sums are S itself; several: summed in int64.
    ps.part.resize(size_t(m_count * ps.o));
    if (ps.segments.size() > 1) sums.assign(ps.part.size(), 0);
    for (Segment& seg : ps.segments) {
      if (absl::Status s = EnsurePhase(seg.phase, profile); !s.ok()) return s;
      InputBatch batch{rows->data(), int(m_count), int(ps.k), ps.input_bits, uint64_t(first_image * l), true};
      if (absl::Status s = backend->RunLayer(seg.mapping, batch, absl::MakeSpan(ps.part)); !s.ok()) {
        return absl::Status(s.code(), absl::StrCat("step '", step.name(), "': ", s.message()));
      }
      if (ps.segments.size() > 1) {
        for (size_t i = 0; i < sums.size(); ++i) sums[i] += ps.part[i];
      }
    }
  }
  const bool real = options.run_layer && ps.kind != Kind::kDigital;
  const bool from_part = ps.kind == Kind::kPim && !real && ps.segments.size() == 1;
  if (s_out != nullptr) {
    *s_out = real        ? RowsToNchw(real_sums, n, ps.o, oh, ow, ps.conv)
             : from_part ? RowsToNchw(ps.part, n, ps.o, oh, ow, ps.conv)
                         : RowsToNchw(sums, n, ps.o, oh, ow, ps.conv);
  }
  // y = ((S * Delta) * s_x) * s_w[o] + bias[o] in double (docs/onnx-convention.md), read straight
  // from the [N*L][O] rows into NCHW order.
  Tensor y(ps.conv ? std::vector<int64_t>{n, ps.o, oh, ow} : std::vector<int64_t>{n, ps.o});
  const double delta = ps.kind == Kind::kDigital ? 1.0 : ps.delta;
  const double sx = ps.input_scale;
  const bool has_bias = !ps.bias.empty();
  auto scale = [&](const auto* src) {
    for (int64_t b = 0; b < n; ++b) {
      for (int64_t o = 0; o < ps.o; ++o) {
        const double sw = ps.weight_scale[size_t(o)];
        const double bias = has_bias ? ps.bias[size_t(o)] : 0.0;
        const auto* in = src + b * l * ps.o + o;
        double* out = y.data.data() + (b * ps.o + o) * l;
        for (int64_t p = 0; p < l; ++p) {
          const double v = ((double(in[p * ps.o]) * delta) * sx) * sw;
          out[p] = has_bias ? v + bias : v;
        }
      }
    }
  };
  if (real) {
    scale(real_sums.data());
  } else if (from_part) {
    scale(ps.part.data());
  } else {
    scale(sums.data());
  }
  return y;
}

absl::StatusOr<Tensor> Executor::Impl::RunStep(PlannedStep& ps, std::map<std::string, Tensor>& values,
                                               int64_t first_image, Tensor* s_out, std::vector<StepProfile>& profile) {
  const proto::Step& step = *ps.step;
  const Tensor& x = values.at(step.inputs(0));
  // For the elementwise ops: the input itself when this step is its last use (values then holds
  // a moved-from tensor until free_after erases it), else a copy.
  auto take_x = [&]() -> Tensor { return ps.consumes_first_input ? std::move(values.at(step.inputs(0))) : x; };
  switch (step.kind_case()) {
    case proto::Step::kQuantize: {
      const proto::QuantizeStep& q = step.quantize();
      return QuantizeOp(take_x(), q.scale(), q.zero_point(), q.lo(), q.hi());
    }
    case proto::Step::kDequantize:
      return DequantizeOp(take_x(), step.dequantize().scale(), step.dequantize().zero_point());
    case proto::Step::kMatrix: return RunMatrix(ps, x, first_image, s_out, profile);
    case proto::Step::kBatchNorm: {
      const proto::BatchNormStep& bn = step.batch_norm();
      return BatchNormOp(take_x(), bn.scale(), bn.bias(), bn.mean(), bn.var(), bn.epsilon());
    }
    case proto::Step::kRelu: return ReluOp(take_x());
    case proto::Step::kClip: return ClipOp(take_x(), step.clip().lo(), step.clip().hi());
    case proto::Step::kAdd: {
      const Tensor& b = values.at(step.inputs(1));
      return AddOp(take_x(), b);
    }
    case proto::Step::kPool: {
      const proto::PoolStep& p = step.pool();
      PoolParams pp;
      pp.kind = p.kind() == proto::PoolStep::MAX       ? PoolParams::Kind::kMax
                : p.kind() == proto::PoolStep::AVERAGE ? PoolParams::Kind::kAverage
                                                       : PoolParams::Kind::kGlobalAverage;
      pp.kernel_h = int(p.kernel_h());
      pp.kernel_w = int(p.kernel_w());
      pp.stride_h = int(p.stride_h());
      pp.stride_w = int(p.stride_w());
      pp.pad_top = int(p.pad_top());
      pp.pad_left = int(p.pad_left());
      pp.pad_bottom = int(p.pad_bottom());
      pp.pad_right = int(p.pad_right());
      pp.count_include_pad = p.count_include_pad();
      pp.ceil_mode = p.ceil_mode();
      return PoolOp(x, pp);
    }
    case proto::Step::kReshape:
      return ReshapeOp(x, std::vector<int64_t>(step.reshape().shape().begin(), step.reshape().shape().end()));
    case proto::Step::kSoftmax: return SoftmaxOp(x, step.softmax().axis());
    case proto::Step::kConcat: {
      std::vector<const Tensor*> inputs;
      for (const std::string& name : step.inputs()) inputs.push_back(&values.at(name));
      return ConcatOp(inputs, step.concat().axis());
    }
    case proto::Step::kFloatMatrix: {
      const proto::FloatMatrixStep& m = step.float_matrix();
      if (!ps.conv) {
        std::vector<double> y = FloatMatmul(x.data, x.batch(), m.weight(), ps.o, ps.k, m.bias());
        return Tensor({x.batch(), ps.o}, std::move(y));
      }
      std::vector<double> rows;
      Im2Col<double>(x, ps.conv_params, &rows);
      const int64_t oh = ps.conv_params.OutH(x.shape[2]), ow = ps.conv_params.OutW(x.shape[3]);
      std::vector<double> y = FloatMatmul(rows, x.batch() * oh * ow, m.weight(), ps.o, ps.k, m.bias());
      return RowsToNchw(y, x.batch(), ps.o, oh, ow, true);
    }
    case proto::Step::KIND_NOT_SET: break;
  }
  return absl::InternalError(absl::StrCat("step '", step.name(), "' has no kind"));
}

Executor::Executor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Executor::~Executor() = default;

absl::StatusOr<std::unique_ptr<Executor>> Executor::Create(const proto::Program& program, Backend* backend,
                                                           ExecutorOptions options) {
  if (options.batch_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("batch size is ", options.batch_size, ", must be >= 1"));
  }
  auto impl = std::make_unique<Impl>();
  impl->program = program;
  impl->backend = backend;
  impl->options = std::move(options);
  if (absl::Status s = impl->Plan(); !s.ok()) return s;
  if (absl::Status s = impl->CheckBackend(); !s.ok()) return s;
  Logger()->debug("planned {} steps, {} load phases, batch size {}", impl->steps.size(), impl->phase_segments.size(),
                  impl->options.batch_size);
  return std::unique_ptr<Executor>(new Executor(std::move(impl)));
}

const std::vector<std::string>& Executor::input_names() const { return impl_->input_names; }
std::vector<int64_t> Executor::input_shape(const std::string& name) const { return impl_->shapes.at(name); }
const proto::Program& Executor::program() const { return impl_->program; }

absl::StatusOr<RunResult> Executor::Run(const std::map<std::string, Tensor>& inputs) {
  Impl& im = *impl_;
  int64_t n = -1;
  for (const std::string& name : im.input_names) {
    auto it = inputs.find(name);
    if (it == inputs.end()) return absl::InvalidArgumentError(absl::StrCat("model input '", name, "' is not given"));
    const std::vector<int64_t>& want = im.shapes.at(name);
    const Tensor& t = it->second;
    bool ok = t.shape.size() == want.size() && int64_t(t.data.size()) == Tensor::NumElements(t.shape);
    for (size_t d = 1; ok && d < want.size(); ++d) ok = t.shape[d] == want[d];
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat("model input '", name, "' has shape ", ShapeToString(t.shape),
                                                     ", the model takes ", ShapeToString(want)));
    }
    if (n >= 0 && t.shape[0] != n) {
      return absl::InvalidArgumentError(absl::StrCat("model inputs have different sample counts (", n, " and ",
                                                     t.shape[0], ")"));
    }
    n = t.shape[0];
  }
  for (const auto& [name, t] : inputs) {
    if (!im.shapes.count(name) || std::find(im.input_names.begin(), im.input_names.end(), name) == im.input_names.end()) {
      return absl::InvalidArgumentError(absl::StrCat("'", name, "' is not an input of the model"));
    }
  }
  // Every value of a batch is held as doubles: refuse a batch whose largest value alone would not
  // fit rather than be killed by the system half way through.
  const int64_t samples_per_batch = std::min<int64_t>(im.options.batch_size, std::max<int64_t>(n, 1));
  for (const auto& [name, shape] : im.shapes) {
    const int64_t bytes_per_sample = Tensor::NumElements({shape.begin() + 1, shape.end()}) * int64_t(sizeof(double));
    if (samples_per_batch * bytes_per_sample > im.options.max_value_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "value '", name, "' takes ", bytes_per_sample, " bytes per sample: a batch of ", samples_per_batch, " needs more than the ",
          im.options.max_value_bytes, " bytes one value may take; ",
          bytes_per_sample > im.options.max_value_bytes
              ? std::string("even one sample does not fit")
              : absl::StrCat("use a batch of at most ", im.options.max_value_bytes / bytes_per_sample)));
    }
  }
  RunResult result;
  result.samples = n;
  for (const Impl::PlannedStep& ps : im.steps) {
    const char* kind = ps.kind == Impl::Kind::kPim ? "pim" : ps.kind == Impl::Kind::kDigital ? "digital" : "host";
    result.profile.push_back(StepProfile{ps.step->name(), kind, 0, 0, {}, 0});
  }
  std::vector<StepProfile> loads;
  const int64_t batch = im.options.batch_size;
  for (int64_t b0 = 0; b0 < n; b0 += batch) {
    const int64_t b1 = std::min(n, b0 + batch);
    std::map<std::string, Tensor> values;
    for (const std::string& name : im.input_names) {
      values[name] = SliceBatch(inputs.at(name), b0, b1);
      if (im.options.keep_values) AppendBatch(result.values[name], values[name]);
    }
    for (size_t i = 0; i < im.steps.size(); ++i) {
      Impl::PlannedStep& ps = im.steps[i];
      StepProfile& prof = result.profile[i];
      const Clock::time_point t0 = Clock::now();
      Counters before;
      const bool count = im.options.profile && ps.kind == Impl::Kind::kPim;
      if (count) {
        absl::StatusOr<Counters> c = im.backend->ReadCounters();
        if (!c.ok()) return c.status();
        before = *c;
      }
      im.step_load_seconds = 0;
      im.step_load_counters.clear();
      Tensor s;
      const bool is_matrix = ps.step->kind_case() == proto::Step::kMatrix;
      absl::StatusOr<Tensor> out =
          im.RunStep(ps, values, b0, is_matrix && im.options.keep_values ? &s : nullptr, loads);
      if (!out.ok()) return out.status();
      if (count) {
        absl::StatusOr<Counters> after = im.backend->ReadCounters();
        if (!after.ok()) return after.status();
        Counters d = Delta(*after, before);
        for (const auto& [counter, value] : im.step_load_counters) d[counter] -= value;
        AddCounters(prof.counters, d);
      }
      ++prof.calls;
      if (is_matrix) prof.macs += int64_t(out->data.size()) * ps.k;
      prof.host_seconds += std::chrono::duration<double>(Clock::now() - t0).count() - im.step_load_seconds;
      const std::string& name = ps.step->outputs(0);
      PIM_CHECK(out->shape.size() == im.shapes.at(name).size());
      if (im.options.keep_values) {
        AppendBatch(result.values[name], *out);
        if (is_matrix) AppendBatch(result.values[ps.step->name() + ":S"], s);
      }
      values[name] = std::move(*out);
      for (const std::string& dead : ps.free_after) values.erase(dead);
    }
    for (const std::string& name : im.program.outputs()) AppendBatch(result.outputs[name], values.at(name));
    if (im.options.progress) im.options.progress(b1, n);
  }
  if (n == 0) {
    for (const std::string& name : im.program.outputs()) {
      std::vector<int64_t> shape = im.shapes.at(name);  // batch dimension still symbolic (-1)
      shape[0] = 0;
      result.outputs[name] = Tensor(std::move(shape), {});
    }
  }
  // Loads were kept out of the steps that triggered them, so the report adds up.
  result.profile.insert(result.profile.end(), loads.begin(), loads.end());
  return result;
}

}  // namespace pim::runtime
