#include "pim/calibration/linearization.h"

#include <cmath>
#include <functional>
#include <fstream>
#include <iterator>
#include <string>

#include "gtest/gtest.h"
#include "pim/calibration/calibration_file.h"
#include "pim/runtime/chip_spec.h"
#include "pim/runtime/executor.h"
#include "pim/runtime/sha256.h"
#include "testing/curve_chip.h"
#include "testing/test_programs.h"

namespace pim::calibration {
namespace {

using testing::CurveChip;
using testing::SmallSpec;
using testing::TrueColumn;

proto::Calibration IdealCalibration(int macros, int columns, int bits, proto::AdcMode mode) {
  proto::Calibration cal;
  for (int m = 0; m < macros; ++m) {
    for (int c = 0; c < columns; ++c) {
      proto::ColumnTransfer* t = cal.add_columns();
      t->set_macro(m);
      t->set_column(c);
      t->set_adc_bits(bits);
      t->set_mode(mode);
      for (int i = 0; i < (1 << bits) - 1; ++i) t->add_thresholds(i + 0.5);
    }
  }
  return cal;
}

TEST(Linearization, IdealThresholdsGiveTheCodesThemselves) {
  const std::vector<double> t = {0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5};
  const std::vector<double> v = CodeValuesFromThresholds(t, -4);
  ASSERT_EQ(v.size(), 8u);
  for (int i = 0; i < 8; ++i) EXPECT_DOUBLE_EQ(v[i], -4 + i);
}

TEST(Linearization, RejectsAColumnWithTheWrongThresholdCount) {
  proto::Calibration cal = IdealCalibration(1, 2, 3, proto::ADC_MODE_SIGNED);
  cal.mutable_columns(1)->mutable_thresholds()->RemoveLast();
  absl::StatusOr<Linearization> lin = LinearizationFromCalibration(cal, "x.cal.pb");
  ASSERT_FALSE(lin.ok());
  EXPECT_EQ(lin.status().message(), "x.cal.pb: columns[1] (macro 0, column 1): 6 thresholds, a 3-bit ADC has 7");
}

TEST(Linearization, RejectsDecreasingThresholds) {
  proto::Calibration cal = IdealCalibration(1, 1, 2, proto::ADC_MODE_UNSIGNED);
  cal.mutable_columns(0)->set_thresholds(2, 0.1);
  absl::StatusOr<Linearization> lin = LinearizationFromCalibration(cal, "c");
  ASSERT_FALSE(lin.ok());
  EXPECT_NE(lin.status().message().find("threshold 2 (0.1) below threshold 1"), std::string::npos);
}

TEST(Linearization, RejectsValuesNoMeasurementGives) {
  struct Case {
    std::function<void(proto::ColumnTransfer*)> damage;
    std::string message;
  };
  const Case cases[] = {
      {[](proto::ColumnTransfer* c) { c->set_thresholds(0, -1e308); }, "threshold 0 is -1e+308, outside [-8, 16]"},
      {[](proto::ColumnTransfer* c) { c->set_thresholds(6, 17); }, "threshold 6 is 17, outside [-8, 16]"},
      {[](proto::ColumnTransfer* c) { c->set_noise_sigma_lsb(-0.1); }, "noise_sigma_lsb -0.1 is negative"},
      {[](proto::ColumnTransfer* c) { c->set_gain(-1); }, "gain -1 is negative"},
      {[](proto::ColumnTransfer* c) { c->add_unmeasured_thresholds(7); }, "unmeasured threshold index 7 out of range"},
      {[](proto::ColumnTransfer* c) {
         c->add_unmeasured_thresholds(0);
         c->add_unmeasured_thresholds(0);
       },
       "unmeasured threshold index 0 listed twice"},
  };
  for (const Case& c : cases) {
    proto::Calibration cal = IdealCalibration(1, 1, 3, proto::ADC_MODE_SIGNED);
    c.damage(cal.mutable_columns(0));
    absl::StatusOr<Linearization> lin = LinearizationFromCalibration(cal, "c");
    ASSERT_FALSE(lin.ok()) << c.message;
    EXPECT_EQ(lin.status().message(), "c: columns[0] (macro 0, column 0): " + c.message);
  }
}

TEST(Linearization, ReadingAFileGivesItsPathHashAndDevice) {
  proto::Calibration cal = IdealCalibration(1, 2, 3, proto::ADC_MODE_SIGNED);
  cal.set_device_serial("chip-7");
  const std::string path = ::testing::TempDir() + "/ref.cal.pb";
  ASSERT_TRUE(WriteCalibrationFile(cal, path).ok());
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  proto::AdcCalibrationRef ref;
  absl::StatusOr<proto::Calibration> back = ReadCalibrationFile(path, &ref);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(ref.path(), path);
  EXPECT_EQ(ref.sha256(), runtime::Sha256Hex(bytes));
  EXPECT_EQ(ref.sha256().size(), 64u);
  EXPECT_EQ(ref.device_serial(), "chip-7");
  // Another calibration, another identity.
  cal.mutable_columns(0)->set_thresholds(0, 0.4);
  ASSERT_TRUE(WriteCalibrationFile(cal, path).ok());
  proto::AdcCalibrationRef other;
  ASSERT_TRUE(ReadCalibrationFile(path, &other).ok());
  EXPECT_NE(other.sha256(), ref.sha256());
}

runtime::LayerMapping TwoTileLayer(runtime::Scheme scheme, int bits, double step) {
  runtime::LayerMapping layer;
  layer.name = "fc1";
  layer.out_channels = 3;
  layer.reduction = 80;
  layer.scheme = scheme;
  layer.rows = 64;
  layer.adc_bits = bits;
  layer.adc_step = step;
  layer.weight_bits = 3;
  layer.input_bits = 4;
  for (int o = 0; o < 3; ++o) {
    for (int k = 0; k < 80; ++k) layer.weight_codes.push_back(int8_t(((o * 7 + k * 3) % 7) - 3));
  }
  const int per = runtime::ColumnsPerWeight(scheme, 3, 1);
  layer.tiles.push_back({1, 0, 0, 64, 0, 3, {0, 0, 0, 0, 3 * per}, 0});
  layer.tiles.push_back({2, 1, 64, 80, 0, 3, {0, 1, 0, 5, 3 * per}, 0});
  return layer;
}

TEST(Linearization, IdealCalibrationReproducesRunLayer) {
  for (runtime::Scheme scheme : {runtime::Scheme::kNative, runtime::Scheme::kDifferential, runtime::Scheme::kBitSerial}) {
    const int bits = 5;
    CurveChip chip(SmallSpec(1, 64, 32, bits), [&](int, int, int b) {
      TrueColumn c;
      for (int i = 0; i < (1 << b) - 1; ++i) c.thresholds.push_back(i + 0.5);
      return c;
    }, 1);
    const runtime::LayerMapping layer = TwoTileLayer(scheme, bits, 3.0);
    ASSERT_TRUE(chip.LoadLayer(layer).ok());
    std::vector<uint8_t> x(5 * 80);
    for (size_t i = 0; i < x.size(); ++i) x[i] = uint8_t((i * 5 + 3) % 16);
    runtime::InputBatch batch{x.data(), 5, 80, 4, 0};
    std::vector<int32_t> raw(15);
    ASSERT_TRUE(chip.RunLayer(layer, batch, absl::MakeSpan(raw)).ok());
    const proto::AdcMode mode =
        scheme == runtime::Scheme::kDifferential ? proto::ADC_MODE_UNSIGNED : proto::ADC_MODE_SIGNED;
    absl::StatusOr<Linearization> lin = LinearizationFromCalibration(IdealCalibration(1, 32, bits, mode), "ideal");
    ASSERT_TRUE(lin.ok());
    std::vector<double> sums(15);
    ASSERT_TRUE(RunLayerLinearized(chip, layer, batch, *lin, absl::MakeSpan(sums)).ok());
    for (int i = 0; i < 15; ++i) EXPECT_EQ(sums[i], double(raw[i])) << runtime::SchemeName(scheme) << " " << i;
  }
}

TEST(Linearization, UndoesGainAndOffsetErrors) {
  // Every column with gain 0.8 and offset +1.3 LSB: raw codes are far off the exact p / step,
  // linearized values are within the quantization error.
  const int bits = 7;
  CurveChip chip(SmallSpec(1, 64, 32, bits), [&](int, int column, int b) {
    TrueColumn c;
    c.gain = 0.8;
    c.offset_lsb = 1.3 - 0.1 * column;
    for (int i = 0; i < (1 << b) - 1; ++i) c.thresholds.push_back(i + 0.5);
    return c;
  }, 1);
  runtime::LayerMapping layer = TwoTileLayer(runtime::Scheme::kNative, bits, 4.0);
  ASSERT_TRUE(chip.LoadLayer(layer).ok());
  proto::Calibration cal;
  for (int column = 0; column < 32; ++column) {
    const TrueColumn& truth = chip.Column(0, column, bits);
    proto::ColumnTransfer* t = cal.add_columns();
    t->set_column(column);
    t->set_adc_bits(bits);
    t->set_mode(proto::ADC_MODE_SIGNED);
    for (double v : testing::EffectiveThresholds(truth, -64)) t->add_thresholds(v);
  }
  absl::StatusOr<Linearization> lin = LinearizationFromCalibration(cal, "gain");
  ASSERT_TRUE(lin.ok()) << lin.status();
  std::vector<uint8_t> x(4 * 80);
  for (size_t i = 0; i < x.size(); ++i) x[i] = uint8_t((i * 7 + 1) % 16);
  runtime::InputBatch batch{x.data(), 4, 80, 4, 0};
  std::vector<int32_t> raw(12);
  std::vector<double> lin_sums(12);
  ASSERT_TRUE(chip.RunLayer(layer, batch, absl::MakeSpan(raw)).ok());
  ASSERT_TRUE(RunLayerLinearized(chip, layer, batch, *lin, absl::MakeSpan(lin_sums)).ok());
  double raw_err = 0, lin_err = 0;
  for (int m = 0; m < 4; ++m) {
    for (int o = 0; o < 3; ++o) {
      int64_t exact = 0;
      for (int k = 0; k < 80; ++k) exact += int64_t(layer.weight_codes[o * 80 + k]) * x[m * 80 + k];
      raw_err = std::max(raw_err, std::abs(raw[m * 3 + o] - double(exact) / 4));
      lin_err = std::max(lin_err, std::abs(lin_sums[m * 3 + o] - double(exact) / 4));
    }
  }
  EXPECT_GT(raw_err, 3.0);
  EXPECT_LT(lin_err, 1.3);  // two conversions, each within ~0.6 LSB after linearization
}

TEST(Linearization, NamesAMissingColumn) {
  CurveChip chip(SmallSpec(1, 64, 32, 4), [&](int, int, int b) {
    TrueColumn c;
    for (int i = 0; i < (1 << b) - 1; ++i) c.thresholds.push_back(i + 0.5);
    return c;
  }, 1);
  runtime::LayerMapping layer = TwoTileLayer(runtime::Scheme::kNative, 4, 2.0);
  ASSERT_TRUE(chip.LoadLayer(layer).ok());
  absl::StatusOr<Linearization> lin =
      LinearizationFromCalibration(IdealCalibration(1, 4, 4, proto::ADC_MODE_SIGNED), "c");
  ASSERT_TRUE(lin.ok());
  std::vector<uint8_t> x(80, 1);
  std::vector<double> sums(3);
  absl::Status s = RunLayerLinearized(chip, layer, {x.data(), 1, 80, 4, 0}, *lin, absl::MakeSpan(sums));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("no 4-bit signed curve for macro 0 column 6"), std::string::npos) << s;
}

}  // namespace
}  // namespace pim::calibration

namespace pim::calibration {
namespace {

TEST(Linearization, ExecutorHookWithAnIdealCalibrationChangesNothing) {
  const proto::Program program = runtime::testing::SmallCnn();
  absl::StatusOr<runtime::ChipSpec> spec = runtime::ChipSpecFromProto(program.target());
  ASSERT_TRUE(spec.ok());
  CurveChip chip(*spec, [](int, int, int b) {
    TrueColumn c;
    for (int i = 0; i < (1 << b) - 1; ++i) c.thresholds.push_back(i + 0.5);
    return c;
  }, 1);
  const int bits = program.steps(1).matrix().pim().adc_bits();
  absl::StatusOr<Linearization> lin =
      LinearizationFromCalibration(IdealCalibration(spec->macros, spec->columns, bits, proto::ADC_MODE_SIGNED), "ideal");
  ASSERT_TRUE(lin.ok());
  runtime::Tensor x({5, 1, 6, 6});
  for (size_t i = 0; i < x.data.size(); ++i) x.data[i] = double((i * 13) % 17) / 16.0;
  runtime::ExecutorOptions plain, linear;
  linear.run_layer = [&](runtime::Backend& b, const runtime::LayerMapping& l, const runtime::InputBatch& in,
                         absl::Span<double> sums) { return RunLayerLinearized(b, l, in, *lin, sums); };
  auto e1 = runtime::Executor::Create(program, &chip, plain);
  auto e2 = runtime::Executor::Create(program, &chip, linear);
  ASSERT_TRUE(e1.ok() && e2.ok());
  auto r1 = (*e1)->Run({{"input", x}});
  auto r2 = (*e2)->Run({{"input", x}});
  ASSERT_TRUE(r1.ok() && r2.ok()) << r1.status() << r2.status();
  EXPECT_EQ(r1->outputs.at("logits").data, r2->outputs.at("logits").data);
}

}  // namespace
}  // namespace pim::calibration
