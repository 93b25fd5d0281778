// pimcal over every link (issue 6): `pimcal adc` (a reduced sweep: one macro, one resolution,
// few repeats) and `pimcal bn` run as a user runs them, on `--device sim` and on pim-emu over a
// real TCP socket and a real pseudo-terminal, with the same profile and seed, give the same
// measurement byte for byte. Only the provenance differs (the device URI each file records, and
// the serial number and firmware string the device reports); it is compared separately. The USB
// case is in usb_pimcal_hil_test.cc (the umockdev binary).

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "emu_process.h"
#include "gtest/gtest.h"
#include "pim/proto/chip.pb.h"
#include "pim/proto/program.pb.h"

namespace pim {
namespace {

constexpr char kChip[] = "typical";
constexpr char kSeed[] = "7";
// One macro, 3-bit, one step setting, 4 repeats: about 15 k vectors, well under a second on sim.
constexpr char kSweep[] = "--macros 0 --adc-bits 3 --repeats 4 --step-settings 1";

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string SimUri(const std::string& seed = kSeed) { return std::string("sim:profile=") + kChip + ",seed=" + seed; }

// The measurement without its provenance, serialized deterministically.
std::string Measurement(proto::Calibration cal) {
  cal.clear_device();
  cal.clear_device_serial();
  cal.clear_firmware_version();
  std::string bytes;
  EXPECT_TRUE(cal.SerializeToString(&bytes));
  return bytes;
}

std::string CalibratedProgram(proto::Program p) {
  p.mutable_bn_calibration()->clear_device();
  p.mutable_bn_calibration()->clear_device_serial();
  std::string bytes;
  EXPECT_TRUE(p.SerializeToString(&bytes));
  return bytes;
}

class PimcalHil : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/pim_pimcal_hil";
    std::filesystem::create_directories(dir_);
  }

  int Tool(const std::string& tool, const std::string& args, std::string* err = nullptr) {
    const std::string cmd = std::string(PIM_BINARY_DIR) + "/bin/" + tool + " " + args + " >" + dir_ + "/out.txt 2>" +
                            dir_ + "/err.txt </dev/null";
    const int status = std::system(cmd.c_str());
    if (err) *err = Slurp(dir_ + "/err.txt");
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  proto::Calibration Adc(const std::string& device, const std::string& name) {
    const std::string out = dir_ + "/" + name + ".cal.pb";
    std::filesystem::remove(out);
    std::string err;
    EXPECT_EQ(Tool("pimcal", std::string("adc ") + kSweep + " --device " + device + " -o " + out, &err), 0)
        << device << ": " << err;
    proto::Calibration cal;
    EXPECT_TRUE(cal.ParseFromString(Slurp(out))) << out;
    return cal;
  }

  // The bundled PIM-QAT CNN compiled by pimc (once per test).
  std::string Model() {
    const std::string pimb = dir_ + "/cnn.pimb";
    if (!std::filesystem::exists(pimb)) {
      std::string err;
      EXPECT_EQ(Tool("pimc", "compile " + std::string(PIM_SOURCE_DIR) + "/tools/qat/models/fmnist-cnn-native-b4.onnx -o " +
                                 pimb, &err), 0) << err;
    }
    return pimb;
  }

  proto::Program Bn(const std::string& device, const std::string& name) {
    const std::string out = dir_ + "/" + name + ".bn.pimb";
    std::filesystem::remove(out);
    std::string err;
    EXPECT_EQ(Tool("pimcal", "bn " + Model() + " --samples 8 --batch 8 --device " + device + " -o " + out, &err), 0)
        << device << ": " << err;
    proto::Program p;
    EXPECT_TRUE(p.ParseFromString(Slurp(out))) << out;
    return p;
  }

  std::string dir_;
};

TEST_F(PimcalHil, AdcCalibrationIsTheSameOverSimTcpAndAPty) {
  const proto::Calibration sim = Adc(SimUri(), "sim");
  ASSERT_GT(sim.columns_size(), 200) << "both modes of 128 columns expected";
  hil::EmuProcess tcp({"--chip", kChip, "--seed", kSeed, "--listen", "127.0.0.1:0"});
  ASSERT_FALSE(tcp.address().empty()) << "pim-emu did not start";
  const proto::Calibration over_tcp = Adc(tcp.address(), "tcp");
  hil::EmuProcess pty({"--chip", kChip, "--seed", kSeed, "--pty"});
  ASSERT_FALSE(pty.address().empty()) << "pim-emu did not start";
  const proto::Calibration over_pty = Adc("serial:" + pty.address() + "@921600", "pty");

  EXPECT_TRUE(Measurement(over_tcp) == Measurement(sim)) << "calibration over tcp differs from sim";
  EXPECT_TRUE(Measurement(over_pty) == Measurement(sim)) << "calibration over the pty differs from sim";
  // The provenance names the device each was measured on.
  EXPECT_EQ(sim.device(), SimUri());
  EXPECT_EQ(over_tcp.device(), tcp.address());
  EXPECT_FALSE(over_pty.device_serial().empty());
}

TEST_F(PimcalHil, AnotherSeedGivesAnotherCalibration) {
  // The equality above means something only if the measurement depends on the chip.
  EXPECT_FALSE(Measurement(Adc(SimUri("8"), "sim8")) == Measurement(Adc(SimUri(), "sim7")));
}

TEST_F(PimcalHil, BnCalibrationGivesTheSameProgramOverSimTcpAndAPty) {
  const proto::Program sim = Bn(SimUri(), "sim");
  ASSERT_EQ(sim.bn_calibration().layers_size(), 5) << "the CNN has five BatchNormalization steps";
  hil::EmuProcess tcp({"--chip", kChip, "--seed", kSeed, "--listen", "127.0.0.1:0"});
  ASSERT_FALSE(tcp.address().empty()) << "pim-emu did not start";
  const proto::Program over_tcp = Bn(tcp.address(), "tcp");
  hil::EmuProcess pty({"--chip", kChip, "--seed", kSeed, "--pty"});
  ASSERT_FALSE(pty.address().empty()) << "pim-emu did not start";
  const proto::Program over_pty = Bn("serial:" + pty.address() + "@921600", "pty");

  EXPECT_TRUE(CalibratedProgram(over_tcp) == CalibratedProgram(sim)) << "BN Program over tcp differs from sim";
  EXPECT_TRUE(CalibratedProgram(over_pty) == CalibratedProgram(sim)) << "BN Program over the pty differs from sim";
  EXPECT_EQ(over_tcp.bn_calibration().device(), tcp.address());
  EXPECT_FALSE(over_pty.bn_calibration().device_serial().empty());
  // And the statistics moved: the comparison is of calibrated Programs, not of copies.
  proto::Program original;
  ASSERT_TRUE(original.ParseFromString(Slurp(Model())));
  original.mutable_bn_calibration()->CopyFrom(sim.bn_calibration());
  EXPECT_FALSE(CalibratedProgram(original) == CalibratedProgram(sim));
}

}  // namespace
}  // namespace pim
