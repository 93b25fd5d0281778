#include "emit/program_emitter.h"

#include <type_traits>

#include "pim/compiler/compiler.h"
#include "pim/runtime/program_file.h"

namespace pim::compiler {
namespace {

proto::Scheme SchemeToProto(runtime::Scheme s) {
  switch (s) {
    case runtime::Scheme::kNative: return proto::NATIVE;
    case runtime::Scheme::kDifferential: return proto::DIFFERENTIAL;
    case runtime::Scheme::kBitSerial: return proto::BIT_SERIAL;
  }
  return proto::SCHEME_UNSPECIFIED;
}

void SetPrediction(const ir::Prediction& p, proto::Prediction* out) {
  out->set_cycles(p.cycles);
  out->set_energy_pj(p.energy_pj);
  out->set_conversions(p.conversions);
  out->set_macs(p.macs);
}

void SetConv(const ir::ConvGeometry& c, proto::ConvGeometry* out) {
  out->set_in_channels(c.in_channels);
  out->set_kernel_h(c.kernel_h);
  out->set_kernel_w(c.kernel_w);
  out->set_stride_h(c.stride_h);
  out->set_stride_w(c.stride_w);
  out->set_pad_top(c.pad_top);
  out->set_pad_left(c.pad_left);
  out->set_pad_bottom(c.pad_bottom);
  out->set_pad_right(c.pad_right);
  out->set_dilation_h(c.dilation_h);
  out->set_dilation_w(c.dilation_w);
}

void EmitMatrix(const ir::MatrixOp& m, proto::MatrixLayer* out) {
  out->set_out_channels(m.out_channels);
  out->set_reduction(m.reduction);
  if (m.conv) SetConv(*m.conv, out->mutable_conv());
  out->set_weight_bits(m.weight_bits);
  out->set_input_bits(m.input_bits);
  out->set_weight_codes(std::string(reinterpret_cast<const char*>(m.weight_codes.data()), m.weight_codes.size()));
  for (double s : m.weight_scale) out->add_weight_scale(s);
  out->set_input_scale(m.input_scale);
  for (double b : m.bias) out->add_bias(b);
  out->set_placement(m.placement == ir::Placement::kPim ? proto::PIM : proto::DIGITAL);
  out->set_placement_reason(m.placement_reason);
  SetPrediction(m.predicted, out->mutable_predicted());
  if (m.placement != ir::Placement::kPim) return;
  proto::PimMapping* pim = out->mutable_pim();
  pim->set_scheme(SchemeToProto(m.scheme));
  pim->set_rows(m.rows);
  pim->set_adc_bits(m.adc_bits);
  pim->set_adc_step(m.adc_step);
  switch (m.adc_step_rule) {
    case ir::AdcStepRule::kTrained: pim->set_adc_step_rule(proto::TRAINED); break;
    case ir::AdcStepRule::kFullRange: pim->set_adc_step_rule(proto::FULL_RANGE); break;
    case ir::AdcStepRule::kOverride: pim->set_adc_step_rule(proto::OVERRIDE); break;
  }
  for (const ir::Tile& t : m.tiles) {
    proto::Tile* pt = pim->add_tiles();
    pt->set_id(t.id);
    pt->set_row_group(t.row_group);
    pt->set_k_begin(t.k_begin);
    pt->set_k_end(t.k_end);
    pt->set_out_begin(t.out_begin);
    pt->set_out_end(t.out_end);
    pt->set_macro(t.macro);
    pt->set_bank(t.bank);
    pt->set_row_offset(t.row_offset);
    pt->set_column_offset(t.column_offset);
    pt->set_columns(t.columns);
    pt->set_load_phase(t.load_phase);
  }
}

void EmitStep(const ir::Step& step, proto::Step* out) {
  out->set_name(step.name);
  for (const std::string& in : step.inputs) out->add_inputs(in);
  for (const std::string& o : step.outputs) out->add_outputs(o);
  std::visit(
      [&](const auto& op) {
        using T = std::decay_t<decltype(op)>;
        if constexpr (std::is_same_v<T, ir::QuantizeOp>) {
          proto::QuantizeStep* q = out->mutable_quantize();
          q->set_scale(op.scale);
          q->set_zero_point(op.zero_point);
          q->set_lo(op.lo);
          q->set_hi(op.hi);
        } else if constexpr (std::is_same_v<T, ir::DequantizeOp>) {
          out->mutable_dequantize()->set_scale(op.scale);
          out->mutable_dequantize()->set_zero_point(op.zero_point);
        } else if constexpr (std::is_same_v<T, ir::MatrixOp>) {
          EmitMatrix(op, out->mutable_matrix());
        } else if constexpr (std::is_same_v<T, ir::FloatMatrixOp>) {
          proto::FloatMatrixStep* f = out->mutable_float_matrix();
          f->set_out_channels(op.out_channels);
          f->set_reduction(op.reduction);
          if (op.conv) SetConv(*op.conv, f->mutable_conv());
          for (double w : op.weight) f->add_weight(w);
          for (double b : op.bias) f->add_bias(b);
        } else if constexpr (std::is_same_v<T, ir::BatchNormOp>) {
          proto::BatchNormStep* bn = out->mutable_batch_norm();
          for (double v : op.scale) bn->add_scale(v);
          for (double v : op.bias) bn->add_bias(v);
          for (double v : op.mean) bn->add_mean(v);
          for (double v : op.var) bn->add_var(v);
          bn->set_epsilon(op.epsilon);
        } else if constexpr (std::is_same_v<T, ir::ReluOp>) {
          out->mutable_relu();
        } else if constexpr (std::is_same_v<T, ir::ClipOp>) {
          out->mutable_clip()->set_lo(op.lo);
          out->mutable_clip()->set_hi(op.hi);
        } else if constexpr (std::is_same_v<T, ir::AddOp>) {
          out->mutable_add();
        } else if constexpr (std::is_same_v<T, ir::PoolOp>) {
          proto::PoolStep* p = out->mutable_pool();
          p->set_kind(op.kind == ir::PoolOp::Kind::kMax       ? proto::PoolStep::MAX
                      : op.kind == ir::PoolOp::Kind::kAverage ? proto::PoolStep::AVERAGE
                                                              : proto::PoolStep::GLOBAL_AVERAGE);
          p->set_kernel_h(op.kernel_h);
          p->set_kernel_w(op.kernel_w);
          p->set_stride_h(op.stride_h);
          p->set_stride_w(op.stride_w);
          p->set_pad_top(op.pad_top);
          p->set_pad_left(op.pad_left);
          p->set_pad_bottom(op.pad_bottom);
          p->set_pad_right(op.pad_right);
          p->set_count_include_pad(op.count_include_pad);
          p->set_ceil_mode(op.ceil_mode);
        } else if constexpr (std::is_same_v<T, ir::ReshapeOp>) {
          for (int64_t d : op.shape) out->mutable_reshape()->add_shape(d);
        } else if constexpr (std::is_same_v<T, ir::SoftmaxOp>) {
          out->mutable_softmax()->set_axis(op.axis);
        } else if constexpr (std::is_same_v<T, ir::ConcatOp>) {
          out->mutable_concat()->set_axis(op.axis);
        }
      },
      step.op);
}

}  // namespace

proto::Program EmitProgram(const ir::Module& module, const runtime::ChipSpec& target) {
  proto::Program p;
  p.set_format_version(runtime::kProgramFormatVersion);
  p.set_producer(ProducerString());
  p.set_source_model_sha256(module.source_sha256);
  p.set_source_model_name(module.source_name);
  p.set_training(module.training);
  runtime::ChipSpecToProto(target, p.mutable_target());
  for (const ir::GraphInput& in : module.inputs) {
    proto::ValueInfo* v = p.add_inputs();
    v->set_name(in.name);
    for (int64_t d : in.shape) v->add_shape(d);
  }
  for (const std::string& o : module.outputs) p.add_outputs(o);
  for (const ir::Step& step : module.steps) EmitStep(step, p.add_steps());
  for (const ir::LoadPhase& phase : module.load_phases) {
    proto::LoadPhase* lp = p.add_load_phases();
    lp->set_index(phase.index);
    for (const std::string& l : phase.layers) lp->add_layers(l);
    lp->set_weight_cells(phase.weight_cells);
  }
  SetPrediction(module.predicted, p.mutable_predicted());
  return p;
}

}  // namespace pim::compiler
