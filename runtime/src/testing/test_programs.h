#pragma once

// Hand-built Programs for tests (header-only, test code only).

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "pim/proto/program.pb.h"
#include "pim/runtime/backend.h"
#include "pim/runtime/chip_file.h"
#include "pim/runtime/program_file.h"

namespace pim::runtime::testing {

inline proto::ChipSpec DefaultTarget() {
  absl::StatusOr<proto::ChipFile> file = ReadChipFile(DefaultChipFilePath());
  if (!file.ok()) return proto::ChipSpec();
  return file->spec();
}

// Tiles for an O x K layer with row groups of R rows and column blocks of at most `max_outputs`
// outputs, packed column-wise into macros of the target chip, all in load phase `phase`.
// `next_column` carries the packing position across layers (macro * columns + column).
inline void AddTiles(const proto::ChipSpec& target, proto::MatrixLayer* m, uint32_t* next_id, int64_t* next_column,
                     int max_outputs, uint32_t phase = 0) {
  proto::PimMapping* pim = m->mutable_pim();
  const int o_count = int(m->out_channels()), k_count = int(m->reduction()), r = int(pim->rows());
  Scheme scheme = pim->scheme() == proto::DIFFERENTIAL ? Scheme::kDifferential
                  : pim->scheme() == proto::BIT_SERIAL ? Scheme::kBitSerial
                                                       : Scheme::kNative;
  const int per = ColumnsPerWeight(scheme, int(m->weight_bits()), int(target.cell_bits()));
  for (int g = 0; g * r < k_count; ++g) {
    for (int o0 = 0; o0 < o_count; o0 += max_outputs) {
      const int o1 = std::min(o_count, o0 + max_outputs);
      const int cols = (o1 - o0) * per;
      int64_t macro = *next_column / target.columns();
      int64_t col = *next_column % target.columns();
      if (col + cols > int64_t(target.columns())) {
        ++macro;
        col = 0;
      }
      proto::Tile* t = pim->add_tiles();
      t->set_id((*next_id)++);
      t->set_row_group(uint32_t(g));
      t->set_k_begin(uint32_t(g * r));
      t->set_k_end(uint32_t(std::min(k_count, (g + 1) * r)));
      t->set_out_begin(uint32_t(o0));
      t->set_out_end(uint32_t(o1));
      t->set_macro(uint32_t(macro % target.macros()));
      t->set_bank(uint32_t(macro / target.macros()));
      t->set_row_offset(0);
      t->set_column_offset(uint32_t(col));
      t->set_columns(uint32_t(cols));
      t->set_load_phase(phase);
      *next_column = macro * target.columns() + col + cols;
    }
  }
}

// Deterministic pseudo-random weight codes in +-qmax.
inline std::string Codes(int count, int qmax, uint32_t seed) {
  std::string out(size_t(count), '\0');
  uint32_t s = seed * 2654435761u + 1;
  for (int i = 0; i < count; ++i) {
    s = s * 1664525u + 1013904223u;
    out[size_t(i)] = char(int8_t(int((s >> 16) % uint32_t(2 * qmax + 1)) - qmax));
  }
  return out;
}

// A small CNN over [N, 1, 6, 6] inputs:
//   input -> quantize(1/15, 0..15) "x_q"
//   -> conv1 (PIM, 4 out, 3x3, pad 1, scheme, R = 4 so several row groups) "conv1_y"
//   -> batch_norm "bn1" -> relu "relu1" -> maxpool 2x2 "pool1" -> quantize "a_q" (0..15)
//   -> flatten [N, 36] "flat" -> fc (DIGITAL, 3 out) "logits"
// Appends a step named `name` reading `inputs` and writing `output`; the caller sets its kind.
inline proto::Step* AddStep(proto::Program* program, const std::string& name,
                            const std::vector<std::string>& inputs, const std::string& output) {
  proto::Step* s = program->add_steps();
  s->set_name(name);
  for (const std::string& i : inputs) s->add_inputs(i);
  s->add_outputs(output);
  return s;
}

inline proto::Program SmallCnn(proto::Scheme scheme = proto::NATIVE, double adc_step = 3.0) {
  proto::Program p;
  p.set_format_version(kProgramFormatVersion);
  p.set_producer("test");
  *p.mutable_target() = DefaultTarget();
  proto::ValueInfo* in = p.add_inputs();
  in->set_name("input");
  for (int64_t d : {-1, 1, 6, 6}) in->add_shape(d);
  p.add_outputs("logits");
  auto step = [&](const std::string& name, const std::vector<std::string>& inputs, const std::string& output) {
    return AddStep(&p, name, inputs, output);
  };
  proto::QuantizeStep* q0 = step("quant_in", {"input"}, "x_q")->mutable_quantize();
  q0->set_scale(1.0 / 15.0);
  q0->set_lo(0);
  q0->set_hi(15);
  proto::MatrixLayer* conv = step("conv1", {"x_q"}, "conv1_y")->mutable_matrix();
  conv->set_out_channels(4);
  conv->set_reduction(9);
  proto::ConvGeometry* g = conv->mutable_conv();
  g->set_in_channels(1);
  g->set_kernel_h(3);
  g->set_kernel_w(3);
  g->set_stride_h(1);
  g->set_stride_w(1);
  g->set_pad_top(1);
  g->set_pad_left(1);
  g->set_pad_bottom(1);
  g->set_pad_right(1);
  g->set_dilation_h(1);
  g->set_dilation_w(1);
  conv->set_weight_bits(4);
  conv->set_input_bits(4);
  conv->set_weight_codes(Codes(36, 7, 1));
  for (double s : {0.05, 0.04, 0.06, 0.03}) conv->add_weight_scale(s);
  conv->set_input_scale(1.0 / 15.0);
  for (double b : {0.1, -0.2, 0.0, 0.05}) conv->add_bias(b);
  conv->set_placement(proto::PIM);
  proto::PimMapping* pim = conv->mutable_pim();
  pim->set_scheme(scheme);
  pim->set_rows(4);
  pim->set_adc_bits(scheme == proto::DIFFERENTIAL ? 4 : 5);
  pim->set_adc_step(adc_step);
  pim->set_adc_step_rule(proto::TRAINED);
  uint32_t next_id = 1;
  int64_t next_column = 0;
  AddTiles(p.target(), conv, &next_id, &next_column, 3);
  proto::BatchNormStep* bn = step("bn1", {"conv1_y"}, "bn1_y")->mutable_batch_norm();
  for (int c = 0; c < 4; ++c) {
    bn->add_scale(1.0 + 0.1 * c);
    bn->add_bias(0.01 * c);
    bn->add_mean(0.02 * c - 0.01);
    bn->add_var(0.5 + 0.25 * c);
  }
  bn->set_epsilon(1e-5);
  step("relu1", {"bn1_y"}, "relu1_y")->mutable_relu();
  proto::PoolStep* pool = step("pool1", {"relu1_y"}, "pool1_y")->mutable_pool();
  pool->set_kind(proto::PoolStep::MAX);
  pool->set_kernel_h(2);
  pool->set_kernel_w(2);
  pool->set_stride_h(2);
  pool->set_stride_w(2);
  proto::QuantizeStep* q1 = step("quant_a", {"pool1_y"}, "a_q")->mutable_quantize();
  q1->set_scale(0.1);
  q1->set_lo(0);
  q1->set_hi(15);
  proto::ReshapeStep* flat = step("flatten", {"a_q"}, "flat")->mutable_reshape();
  for (int64_t d : {-1, 36}) flat->add_shape(d);
  proto::MatrixLayer* fc = step("fc", {"flat"}, "logits")->mutable_matrix();
  fc->set_out_channels(3);
  fc->set_reduction(36);
  fc->set_weight_bits(4);
  fc->set_input_bits(4);
  fc->set_weight_codes(Codes(108, 7, 2));
  fc->add_weight_scale(0.02);
  fc->set_input_scale(0.1);
  fc->set_placement(proto::DIGITAL);
  proto::LoadPhase* phase = p.add_load_phases();
  phase->set_index(0);
  phase->add_layers("conv1");
  return p;
}

// An MLP over [N, 1, 28, 28] images: quantize(1/15, 0..15) "x_q" -> flatten "flat" -> fc1 (PIM,
// 784 -> 32, native, R = 64, Delta 4) -> relu -> quantize(0.25, 0..15) -> fc2 (PIM, 32 -> 10,
// differential) "logits".
inline proto::Program ImageMlp() {
  proto::Program p;
  p.set_format_version(kProgramFormatVersion);
  p.set_producer("test");
  p.set_source_model_name("image_mlp.onnx");
  *p.mutable_target() = DefaultTarget();
  proto::ValueInfo* in = p.add_inputs();
  in->set_name("input");
  for (int64_t d : {-1, 1, 28, 28}) in->add_shape(d);
  p.add_outputs("logits");
  auto step = [&](const std::string& name, const std::string& input, const std::string& output) {
    return AddStep(&p, name, {input}, output);
  };
  auto quant = [&](const std::string& name, const std::string& input, const std::string& output, double scale) {
    proto::QuantizeStep* q = step(name, input, output)->mutable_quantize();
    q->set_scale(scale);
    q->set_hi(15);
  };
  uint32_t next_id = 1;
  int64_t next_column = 0;
  auto fc = [&](const std::string& name, const std::string& input, const std::string& output, int o, int k,
                proto::Scheme scheme, double delta, double input_scale) {
    proto::MatrixLayer* m = step(name, input, output)->mutable_matrix();
    m->set_out_channels(uint32_t(o));
    m->set_reduction(uint32_t(k));
    m->set_weight_bits(4);
    m->set_input_bits(4);
    m->set_weight_codes(Codes(o * k, 7, uint32_t(o + k)));
    for (int i = 0; i < o; ++i) m->add_weight_scale(0.01 + 0.001 * i);
    for (int i = 0; i < o; ++i) m->add_bias(0.01 * (i % 5) - 0.02);
    m->set_input_scale(input_scale);
    m->set_placement(proto::PIM);
    proto::PimMapping* pim = m->mutable_pim();
    pim->set_scheme(scheme);
    pim->set_rows(64);
    pim->set_adc_bits(scheme == proto::DIFFERENTIAL ? 6 : 7);
    pim->set_adc_step(delta);
    pim->set_adc_step_rule(proto::TRAINED);
    AddTiles(p.target(), m, &next_id, &next_column, 16);
  };
  quant("quant_in", "input", "x_q", 1.0 / 15.0);
  step("flatten", "x_q", "flat")->mutable_reshape()->add_shape(-1);
  p.mutable_steps(1)->mutable_reshape()->add_shape(784);
  fc("fc1", "flat", "fc1_y", 32, 784, proto::NATIVE, 4.0, 1.0 / 15.0);
  step("relu1", "fc1_y", "relu1_y")->mutable_relu();
  quant("quant_h", "relu1_y", "h_q", 0.25);
  fc("fc2", "h_q", "logits", 10, 32, proto::DIFFERENTIAL, 2.0, 0.25);
  proto::LoadPhase* phase = p.add_load_phases();
  phase->add_layers("fc1");
  phase->add_layers("fc2");
  return p;
}

}  // namespace pim::runtime::testing
