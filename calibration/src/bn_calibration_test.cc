#include "pim/calibration/bn_calibration.h"

#include <cmath>

#include "gtest/gtest.h"
#include "pim/runtime/chip_spec.h"
#include "pim/runtime/executor.h"
#include "testing/curve_chip.h"
#include "testing/test_programs.h"

namespace pim::calibration {
namespace {

using testing::CurveChip;
using testing::TrueColumn;

// A chip whose columns have a 15% gain error and an offset: pre-BN statistics move.
std::unique_ptr<CurveChip> SkewedChip(const proto::Program& program) {
  absl::StatusOr<runtime::ChipSpec> spec = runtime::ChipSpecFromProto(program.target());
  EXPECT_TRUE(spec.ok());
  return std::make_unique<CurveChip>(*spec, [](int, int column, int bits) {
    TrueColumn c;
    c.gain = 1.15;
    c.offset_lsb = 0.4 + 0.05 * column;
    for (int i = 0; i < (1 << bits) - 1; ++i) c.thresholds.push_back(i + 0.5);
    return c;
  }, 1);
}

std::map<std::string, runtime::Tensor> Images(int n) {
  runtime::Tensor x({n, 1, 6, 6});
  for (size_t i = 0; i < x.data.size(); ++i) x.data[i] = double((i * 37 + 11) % 101) / 100.0;
  return {{"input", x}};
}

// Per-channel mean and unbiased variance of a [N, C, H, W] tensor.
void Stats(const runtime::Tensor& t, std::vector<double>* mean, std::vector<double>* var) {
  const int64_t c_count = t.shape[1], hw = t.sample_size() / c_count;
  mean->assign(size_t(c_count), 0);
  var->assign(size_t(c_count), 0);
  const double n = double(t.batch() * hw);
  for (int64_t i = 0; i < t.batch(); ++i)
    for (int64_t c = 0; c < c_count; ++c)
      for (int64_t s = 0; s < hw; ++s) (*mean)[size_t(c)] += t.data[size_t((i * c_count + c) * hw + s)] / n;
  for (int64_t i = 0; i < t.batch(); ++i)
    for (int64_t c = 0; c < c_count; ++c)
      for (int64_t s = 0; s < hw; ++s)
        (*var)[size_t(c)] += std::pow(t.data[size_t((i * c_count + c) * hw + s)] - (*mean)[size_t(c)], 2) / (n - 1);
}

TEST(BnCalibration, ReplacesStatisticsWithTheChipsOwn) {
  const proto::Program program = runtime::testing::SmallCnn();
  auto chip = SkewedChip(program);
  BnCalibrationOptions options;
  options.device = "test:skewed";
  options.data = "synthetic";
  options.batch_size = 7;
  absl::StatusOr<BnCalibration> cal = CalibrateBatchNorm(program, chip.get(), Images(20), options);
  ASSERT_TRUE(cal.ok()) << cal.status();

  // The reference: the pre-BN values of the whole Program on the same chip.
  runtime::ExecutorOptions keep;
  keep.keep_values = true;
  auto exec = runtime::Executor::Create(program, chip.get(), keep);
  ASSERT_TRUE(exec.ok()) << exec.status();
  auto run = (*exec)->Run(Images(20));
  ASSERT_TRUE(run.ok()) << run.status();
  std::vector<double> mean, var;
  Stats(run->values.at("conv1_y"), &mean, &var);
  const proto::BatchNormStep& bn = cal->program.steps(2).batch_norm();
  for (int c = 0; c < 4; ++c) {
    EXPECT_NEAR(bn.mean(c), mean[size_t(c)], 1e-12);
    EXPECT_NEAR(bn.var(c), var[size_t(c)], 1e-12);
    EXPECT_EQ(bn.scale(c), program.steps(2).batch_norm().scale(c));
    EXPECT_NE(bn.mean(c), program.steps(2).batch_norm().mean(c));
  }
  const proto::BnCalibrationRecord& rec = cal->program.bn_calibration();
  EXPECT_EQ(rec.device(), "test:skewed");
  EXPECT_EQ(rec.device_serial(), "curve-chip");
  EXPECT_EQ(rec.data(), "synthetic");
  EXPECT_EQ(rec.samples(), 20u);
  ASSERT_EQ(rec.layers_size(), 1);
  EXPECT_EQ(rec.layers(0), "bn1");
}

TEST(BnCalibration, EachLayerSeesTheCalibratedLayersBeforeIt) {
  // bn2 directly after bn1: once bn1 is re-estimated on these images, its output has, per
  // channel, mean bias1 and variance scale1^2 * var / (var + eps); bn2 must measure exactly that.
  proto::Program program = runtime::testing::SmallCnn();
  proto::Step bn2 = program.steps(2);
  bn2.set_name("bn2");
  bn2.set_inputs(0, "bn1_y");
  bn2.set_outputs(0, "bn2_y");
  for (int c = 0; c < 4; ++c) bn2.mutable_batch_norm()->set_mean(c, 5.0);  // far off on purpose
  program.mutable_steps(3)->set_inputs(0, "bn2_y");  // relu reads bn2
  auto* steps = program.mutable_steps();
  steps->Add(std::move(bn2));
  for (int i = steps->size() - 1; i > 3; --i) steps->SwapElements(i, i - 1);
  ASSERT_EQ(program.steps(3).name(), "bn2");
  auto chip = SkewedChip(program);
  absl::StatusOr<BnCalibration> cal = CalibrateBatchNorm(program, chip.get(), Images(16), {});
  ASSERT_TRUE(cal.ok()) << cal.status();
  ASSERT_EQ(cal->layers.size(), 2u);
  const proto::BatchNormStep& bn1 = cal->program.steps(2).batch_norm();
  const proto::BatchNormStep& got = cal->program.steps(3).batch_norm();
  for (int c = 0; c < 4; ++c) {
    EXPECT_NEAR(got.mean(c), bn1.bias(c), 1e-9) << c;
    const double expect_var = bn1.scale(c) * bn1.scale(c) * bn1.var(c) / (bn1.var(c) + bn1.epsilon());
    EXPECT_NEAR(got.var(c), expect_var, 1e-9) << c;
  }
}

proto::AdcCalibrationRef Ref(const std::string& path, char digit) {
  proto::AdcCalibrationRef ref;
  ref.set_path(path);
  ref.set_sha256(std::string(64, digit));
  return ref;
}

TEST(BnCalibration, RecordsTheAdcCalibrationItMeasuredThrough) {
  const proto::Program program = runtime::testing::SmallCnn();
  auto chip = SkewedChip(program);
  absl::StatusOr<BnCalibration> raw = CalibrateBatchNorm(program, chip.get(), Images(4), {});
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_FALSE(raw->program.bn_calibration().has_adc_calibration()) << "measured on raw codes";
  BnCalibrationOptions options;
  options.adc_calibration = Ref("typ.cal.pb", 'c');
  options.adc_calibration->set_device_serial("curve-chip");
  absl::StatusOr<BnCalibration> lin = CalibrateBatchNorm(program, chip.get(), Images(4), options);
  ASSERT_TRUE(lin.ok()) << lin.status();
  const proto::AdcCalibrationRef& got = lin->program.bn_calibration().adc_calibration();
  EXPECT_EQ(got.path(), "typ.cal.pb");
  EXPECT_EQ(got.sha256(), std::string(64, 'c'));
  EXPECT_EQ(got.device_serial(), "curve-chip");
}

TEST(BnCalibration, RunningWithAnotherLinearizationThanTheStatisticsIsRefused) {
  proto::Program program = runtime::testing::SmallCnn();
  const proto::AdcCalibrationRef a = Ref("a.cal.pb", 'a'), a_moved = Ref("moved/a.cal.pb", 'a'), b = Ref("b.cal.pb", 'b');
  // No record: any linearization (the "lin" condition).
  EXPECT_TRUE(CheckLinearizationMatchesBnCalibration(program, nullptr, "m").ok());
  EXPECT_TRUE(CheckLinearizationMatchesBnCalibration(program, &a, "m").ok());
  // Statistics on raw codes: only raw codes.
  program.mutable_bn_calibration()->add_layers("bn1");
  EXPECT_TRUE(CheckLinearizationMatchesBnCalibration(program, nullptr, "m").ok());
  absl::Status s = CheckLinearizationMatchesBnCalibration(program, &a, "m.pimb");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("m.pimb: its BN statistics were measured on raw ADC codes"), std::string::npos) << s;
  // Statistics through a: a (wherever the file is now), not raw codes, not b.
  *program.mutable_bn_calibration()->mutable_adc_calibration() = a;
  EXPECT_TRUE(CheckLinearizationMatchesBnCalibration(program, &a, "m").ok());
  EXPECT_TRUE(CheckLinearizationMatchesBnCalibration(program, &a_moved, "m").ok()) << "the hash is the identity";
  s = CheckLinearizationMatchesBnCalibration(program, nullptr, "m.pimb");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("measured through the ADC calibration 'a.cal.pb' (sha256 aaaaaaaaaaaaaaaa...)"),
            std::string::npos) << s;
  EXPECT_NE(s.message().find("run it with --calibration a.cal.pb"), std::string::npos) << s;
  s = CheckLinearizationMatchesBnCalibration(program, &b, "m.pimb");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("a different file 'b.cal.pb'"), std::string::npos) << s;
}

TEST(BnCalibration, RefusesAProgramWithoutBatchNorm) {
  proto::Program program = runtime::testing::SmallCnn();
  program.mutable_steps(2)->mutable_relu();  // bn1 becomes a relu
  auto chip = SkewedChip(program);
  absl::StatusOr<BnCalibration> cal = CalibrateBatchNorm(program, chip.get(), Images(2), {});
  ASSERT_FALSE(cal.ok());
  EXPECT_NE(cal.status().message().find("no BatchNormalization step"), std::string::npos) << cal.status();
}

}  // namespace
}  // namespace pim::calibration
