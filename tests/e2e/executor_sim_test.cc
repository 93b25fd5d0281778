// The executor over the ideal simulator on hand-built Programs, against hand-computed values.

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pim/runtime/executor.h"
#include "pim/runtime/program_file.h"
#include "pim/sim/sim_backend.h"
#include "testing/test_programs.h"

namespace pim {
namespace {

using runtime::Tensor;
using ::testing::HasSubstr;

std::unique_ptr<runtime::Backend> Sim(const proto::Program& p) {
  runtime::OpenOptions options;
  options.target = *runtime::ChipSpecFromProto(p.target());
  absl::StatusOr<std::unique_ptr<runtime::Backend>> b = sim::OpenSimBackend(runtime::DeviceUri{}, options);
  EXPECT_TRUE(b.ok()) << b.status();
  return std::move(*b);
}

// input [N,1,3,3] -> quantize(0.5) -> 2x2 conv (1 output, R = 2, native, Delta 2, 3-bit ADC)
// -> relu -> flatten [N,4] -> softmax.
proto::Program TinyConv(proto::Placement placement) {
  proto::Program p;
  p.set_format_version(runtime::kProgramFormatVersion);
  *p.mutable_target() = runtime::testing::DefaultTarget();
  proto::ValueInfo* in = p.add_inputs();
  in->set_name("input");
  for (int64_t d : {-1, 1, 3, 3}) in->add_shape(d);
  p.add_outputs("probs");
  auto step = [&](const std::string& name, const std::string& input, const std::string& output) {
    return runtime::testing::AddStep(&p, name, {input}, output);
  };
  proto::QuantizeStep* q = step("q", "input", "x_q")->mutable_quantize();
  q->set_scale(0.5);
  q->set_hi(15);
  proto::MatrixLayer* m = step("conv", "x_q", "y")->mutable_matrix();
  m->set_out_channels(1);
  m->set_reduction(4);
  proto::ConvGeometry* g = m->mutable_conv();
  g->set_in_channels(1);
  g->set_kernel_h(2);
  g->set_kernel_w(2);
  g->set_stride_h(1);
  g->set_stride_w(1);
  g->set_dilation_h(1);
  g->set_dilation_w(1);
  m->set_weight_bits(3);
  m->set_input_bits(4);
  m->set_weight_codes(std::string({1, -2, 3, -1}));
  m->add_weight_scale(0.25);
  m->set_input_scale(0.5);
  m->add_bias(0.125);
  m->set_placement(placement);
  if (placement == proto::PIM) {
    proto::PimMapping* pim = m->mutable_pim();
    pim->set_scheme(proto::NATIVE);
    pim->set_rows(2);
    pim->set_adc_bits(3);
    pim->set_adc_step(2.0);
    uint32_t id = 0;
    int64_t col = 0;
    runtime::testing::AddTiles(p.target(), m, &id, &col, 1);
    proto::LoadPhase* phase = p.add_load_phases();
    phase->add_layers("conv");
  }
  step("relu", "y", "r")->mutable_relu();
  proto::ReshapeStep* flat = step("flat", "r", "f")->mutable_reshape();
  flat->add_shape(-1);
  flat->add_shape(4);
  step("softmax", "f", "probs")->mutable_softmax()->set_axis(1);
  return p;
}

Tensor TinyInput() {
  Tensor t({1, 1, 3, 3});
  for (int i = 0; i < 9; ++i) t.data[size_t(i)] = 0.5 * (i + 1);  // codes 1..9
  return t;
}

TEST(ExecutorSim, TinyConvMatchesHandComputedValues) {
  proto::Program p = TinyConv(proto::PIM);
  auto backend = Sim(p);
  runtime::ExecutorOptions options;
  options.keep_values = true;
  options.profile = true;
  absl::StatusOr<std::unique_ptr<runtime::Executor>> ex = runtime::Executor::Create(p, backend.get(), options);
  ASSERT_TRUE(ex.ok()) << ex.status();
  absl::StatusOr<runtime::RunResult> r = (*ex)->Run({{"input", TinyInput()}});
  ASSERT_TRUE(r.ok()) << r.status();
  // Row-group sums (g0, g1) per position: (-3, 7), (-4, 9), (-6, 13), (-7, 15); with Delta 2
  // and codes in [-4, 3]: (-2, 3), (-2, 3), (-3, 3), (-4, 3).
  EXPECT_EQ(r->values.at("x_q").data, (std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(r->values.at("conv:S").shape, (std::vector<int64_t>{1, 1, 2, 2}));
  EXPECT_EQ(r->values.at("conv:S").data, (std::vector<double>{1, 1, 0, -1}));
  EXPECT_EQ(r->values.at("y").data, (std::vector<double>{0.375, 0.375, 0.125, -0.125}));
  EXPECT_EQ(r->values.at("r").data, (std::vector<double>{0.375, 0.375, 0.125, 0}));
  const double e[4] = {std::exp(0.0), std::exp(0.0), std::exp(-0.25), std::exp(-0.375)};
  const double sum = e[0] + e[1] + e[2] + e[3];
  for (int i = 0; i < 4; ++i) EXPECT_DOUBLE_EQ(r->outputs.at("probs").data[size_t(i)], e[i] / sum);
  // Profile: the PIM layer converted 4 positions x 2 row groups once; loads are separate.
  ASSERT_EQ(r->profile[1].name, "conv");
  EXPECT_EQ(r->profile[1].kind, "pim");
  EXPECT_EQ(r->profile[1].counters.at("adc.conversions"), 8);
  EXPECT_EQ(r->profile[1].counters.at("adc.saturations"), 4);
  EXPECT_EQ(r->profile[1].counters.at("tiles.written"), 0);
  EXPECT_EQ(r->profile.back().name, "load phase 0");
  EXPECT_EQ(r->profile.back().counters.at("tiles.written"), 2);
}

TEST(ExecutorSim, DigitalPlacementIsTheExactProduct) {
  proto::Program p = TinyConv(proto::DIGITAL);
  runtime::ExecutorOptions options;
  options.keep_values = true;
  absl::StatusOr<std::unique_ptr<runtime::Executor>> ex = runtime::Executor::Create(p, nullptr, options);
  ASSERT_TRUE(ex.ok()) << ex.status();
  absl::StatusOr<runtime::RunResult> r = (*ex)->Run({{"input", TinyInput()}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->values.at("conv:S").data, (std::vector<double>{4, 5, 7, 8}));
  // ((S * 1) * 0.5) * 0.25 + 0.125
  EXPECT_EQ(r->values.at("y").data, (std::vector<double>{0.625, 0.75, 1.0, 1.125}));
}

Tensor RandomImages(int n, uint32_t seed) {
  Tensor t({n, 1, 6, 6});
  uint32_t s = seed;
  for (double& v : t.data) {
    s = s * 1664525u + 1013904223u;
    v = double(float(double(s >> 24) / 255.0));
  }
  return t;
}

absl::StatusOr<runtime::RunResult> RunCnn(const proto::Program& p, const Tensor& x, int batch, bool keep = true) {
  auto backend = Sim(p);
  runtime::ExecutorOptions options;
  options.batch_size = batch;
  options.keep_values = keep;
  absl::StatusOr<std::unique_ptr<runtime::Executor>> ex = runtime::Executor::Create(p, backend.get(), options);
  if (!ex.ok()) return ex.status();
  return (*ex)->Run({{"input", x}});
}

TEST(ExecutorSim, ResultsDoNotDependOnBatchSize) {
  for (proto::Scheme scheme : {proto::NATIVE, proto::DIFFERENTIAL, proto::BIT_SERIAL}) {
    proto::Program p = runtime::testing::SmallCnn(scheme, 2.0);
    const Tensor x = RandomImages(11, 5);
    absl::StatusOr<runtime::RunResult> one = RunCnn(p, x, 1);
    absl::StatusOr<runtime::RunResult> all = RunCnn(p, x, 64);
    absl::StatusOr<runtime::RunResult> four = RunCnn(p, x, 4);
    ASSERT_TRUE(one.ok() && all.ok() && four.ok()) << one.status() << all.status() << four.status();
    for (const auto& [name, t] : all->values) {
      EXPECT_EQ(one->values.at(name).data, t.data) << name;
      EXPECT_EQ(four->values.at(name).data, t.data) << name;
    }
    EXPECT_EQ(all->values.at("conv1:S").shape, (std::vector<int64_t>{11, 4, 6, 6}));
    EXPECT_EQ(all->outputs.at("logits").shape, (std::vector<int64_t>{11, 3}));
  }
}

// The conv layer split over two load phases whose tiles share cells: the executor must
// reload between them (and again for every batch) and still compute the same values.
TEST(ExecutorSim, ReloadsWhenTheLoadPhaseChanges) {
  proto::Program one_phase = runtime::testing::SmallCnn(proto::NATIVE, 2.0);
  proto::Program two_phases = one_phase;
  proto::PimMapping* pim = two_phases.mutable_steps(1)->mutable_matrix()->mutable_pim();
  ASSERT_GE(pim->tiles_size(), 4);
  for (int i = 0; i < pim->tiles_size(); ++i) {
    if (i % 2 == 1) {
      pim->mutable_tiles(i)->set_load_phase(1);
      pim->mutable_tiles(i)->set_column_offset(pim->tiles(i - 1).column_offset());
      pim->mutable_tiles(i)->set_macro(pim->tiles(i - 1).macro());
    }
  }
  proto::LoadPhase* phase = two_phases.add_load_phases();
  phase->set_index(1);
  phase->add_layers("conv1");
  ASSERT_TRUE(runtime::ValidateProgram(two_phases, "two").ok()) << runtime::ValidateProgram(two_phases, "two");
  const Tensor x = RandomImages(7, 9);
  absl::StatusOr<runtime::RunResult> a = RunCnn(one_phase, x, 3);
  absl::StatusOr<runtime::RunResult> b = RunCnn(two_phases, x, 3);
  ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
  EXPECT_EQ(a->values.at("conv1:S").data, b->values.at("conv1:S").data);
  EXPECT_EQ(a->outputs.at("logits").data, b->outputs.at("logits").data);
  int loads = 0;
  for (const runtime::StepProfile& s : b->profile) loads += s.kind == "load" ? int(s.calls) : 0;
  EXPECT_EQ(loads, 6);  // 3 batches x 2 phases
}

TEST(ExecutorSim, RefusesInputOfWrongShape) {
  proto::Program p = runtime::testing::SmallCnn();
  absl::StatusOr<runtime::RunResult> r = RunCnn(p, Tensor({2, 1, 5, 6}), 4);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("model input 'input' has shape [2, 1, 5, 6], the model takes [N, 1, 6, 6]"));
}

TEST(ExecutorSim, RefusesABatchWhoseLargestValueDoesNotFit) {
  proto::Program p = runtime::testing::SmallCnn();
  auto backend = Sim(p);
  runtime::ExecutorOptions options;
  options.batch_size = 64;
  options.max_value_bytes = 20000;  // a few samples of this small model's largest value
  auto ex = runtime::Executor::Create(p, backend.get(), options);
  ASSERT_TRUE(ex.ok()) << ex.status();
  // One sample fits; the batch is what the data holds when that is less than the option.
  EXPECT_TRUE((*ex)->Run({{"input", RandomImages(1, 1)}}).ok());
  absl::StatusOr<runtime::RunResult> r = (*ex)->Run({{"input", RandomImages(100, 1)}});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("a batch of 64 needs more than the 20000 bytes"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("use a batch of at most"));
}

TEST(ExecutorSim, RefusesChipTooSmallForTheProgram) {
  proto::Program p = runtime::testing::SmallCnn();
  runtime::ChipSpec small = *runtime::ChipSpecFromProto(p.target());
  small.name = "tiny";
  small.columns = 8;
  sim::SimParams params;
  params.spec = small;
  absl::StatusOr<std::unique_ptr<sim::SimBackend>> b = sim::SimBackend::Create(params);
  ASSERT_TRUE(b.ok());
  absl::StatusOr<std::unique_ptr<runtime::Executor>> ex = runtime::Executor::Create(p, b->get());
  EXPECT_THAT(std::string(ex.status().message()), HasSubstr("chip 'tiny' has columns = 8"));
}

}  // namespace
}  // namespace pim
