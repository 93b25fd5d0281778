// pimrun --profile --json, run as a user runs it: per-layer cycles and energy are reported, and a
// layer that fills every macro of the default target runs at the peak derived in
// docs/chip-model.md section 3 (204.8 GMAC/s).

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "gtest/gtest.h"
#include "pim/runtime/npy.h"
#include "testing/test_programs.h"

namespace pim {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// input [N, 64] -> quantize (0..15) -> "full": PIM fc 64 -> 256, native, 4-bit weights and inputs,
// R = 64, 7-bit ADC, 32 outputs (128 columns) per tile: 8 tiles filling the 8 macros.
proto::Program FullChipLayer() {
  proto::Program p;
  p.set_format_version(runtime::kProgramFormatVersion);
  p.set_producer("test");
  p.set_source_model_name("full_chip.onnx");
  *p.mutable_target() = runtime::testing::DefaultTarget();
  proto::ValueInfo* in = p.add_inputs();
  in->set_name("input");
  in->add_shape(-1);
  in->add_shape(64);
  p.add_outputs("logits");
  proto::Step* q = p.add_steps();
  q->set_name("quant_in");
  q->add_inputs("input");
  q->add_outputs("x_q");
  q->mutable_quantize()->set_scale(1.0 / 15.0);
  q->mutable_quantize()->set_hi(15);
  proto::Step* s = p.add_steps();
  s->set_name("full");
  s->add_inputs("x_q");
  s->add_outputs("logits");
  proto::MatrixLayer* m = s->mutable_matrix();
  m->set_out_channels(256);
  m->set_reduction(64);
  m->set_weight_bits(4);
  m->set_input_bits(4);
  m->set_weight_codes(runtime::testing::Codes(256 * 64, 7, 11));
  m->add_weight_scale(0.01);
  m->set_input_scale(1.0 / 15.0);
  m->set_placement(proto::PIM);
  proto::PimMapping* pim = m->mutable_pim();
  pim->set_scheme(proto::NATIVE);
  pim->set_rows(64);
  pim->set_adc_bits(7);
  pim->set_adc_step(8.0);
  pim->set_adc_step_rule(proto::TRAINED);
  uint32_t next_id = 1;
  int64_t next_column = 0;
  runtime::testing::AddTiles(p.target(), m, &next_id, &next_column, 32);
  p.add_load_phases()->add_layers("full");
  return p;
}

double Field(const std::string& json, const std::string& name) {
  std::smatch match;
  const std::regex re("\"" + name + "\": (-?[0-9.eE+-]+)");
  if (!std::regex_search(json, match, re)) {
    ADD_FAILURE() << "no field '" << name << "' in " << json;
    return -1;
  }
  return std::stod(match[1]);
}

TEST(PimrunProfile, JsonReportsPerLayerCyclesEnergyAndThePeak) {
  const std::string dir = ::testing::TempDir() + "/pimrun_profile_test";
  std::filesystem::create_directories(dir);
  const proto::Program program = FullChipLayer();
  ASSERT_EQ(program.steps(1).matrix().pim().tiles_size(), 8);
  std::ofstream(dir + "/full.pimb", std::ios::binary) << program.SerializeAsString();
  runtime::Tensor x({100, 64});
  for (size_t i = 0; i < x.data.size(); ++i) x.data[i] = double((i * 37) % 16) / 15.0;
  ASSERT_TRUE(runtime::WriteNpyFloat32(dir + "/x.npy", x).ok());
  const std::string cmd = std::string(PIM_BINARY_DIR) + "/bin/pimrun " + dir + "/full.pimb --input " + dir +
                          "/x.npy --batch 100 --profile --json >" + dir + "/out.json 2>" + dir + "/err.txt";
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << Slurp(dir + "/err.txt");
  const std::string out = Slurp(dir + "/out.json");

  // The "full" step's own figures (its object runs up to the next step's).
  const size_t at = out.find("\"step\": \"full\"");
  ASSERT_NE(at, std::string::npos) << out;
  const std::string layer = out.substr(at, out.find("\"step\": ", at + 1) - at);
  EXPECT_EQ(Field(layer, "macs"), 100.0 * 256 * 64);
  EXPECT_EQ(Field(layer, "cycles_device"), 100.0 * 16);  // one 16-cycle round per vector, every macro at once
  EXPECT_GT(Field(layer, "cycles_link"), 0);
  EXPECT_GT(Field(layer, "link_share"), 0.99);  // a 1.5 MB/s lab link dwarfs the compute
  EXPECT_EQ(Field(layer, "conversions"), 100.0 * 256);
  EXPECT_EQ(Field(layer, "utilization"), 1.0);
  const double array = Field(layer, "array"), adc = Field(layer, "adc"), digital = Field(layer, "digital"),
               io = Field(layer, "io"), weights = Field(layer, "weights"), total = Field(layer, "total");
  EXPECT_GT(array, 0);
  EXPECT_GT(adc, 0);
  EXPECT_GT(io, 0);
  EXPECT_EQ(weights, 0);  // weight writes belong to "load phase 0"
  EXPECT_NEAR(array + adc + digital + io + weights, total, 1e-9 * total);
  // docs/chip-model.md section 3: 8 macros x 2,048 MACs / 16 cycles x 200 MHz.
  EXPECT_NEAR(Field(layer, "macs_per_second"), 204.8e9, 1e-6);

  const size_t load = out.find("\"step\": \"load phase 0\"");
  ASSERT_NE(load, std::string::npos) << out;
  EXPECT_EQ(Field(out.substr(load), "weight_rows_written"), 8.0 * 64);
  const std::string totals = out.substr(out.find("\"total\": {"));
  EXPECT_EQ(Field(totals, "weight_loads"), 1);
  EXPECT_EQ(Field(totals, "weight_reloads"), 0);
  EXPECT_GT(Field(totals, "samples_per_second"), 0);
}

}  // namespace
}  // namespace pim
