// The calibration chain as a user runs it, on a real model (issue 6): pimc compiles the bundled
// PIM-QAT CNN, `pimcal bn` re-estimates its BatchNorms on a non-ideal simulated chip, `pimcal adc`
// measures that chip's ADCs, and `pimrun` (with and without --calibration) runs the results on a
// few test images. Checks what the chain is for: on the 'typical' chip the uncorrected model
// loses accuracy, and BN calibration brings it back toward the ideal chip's; the Program records
// what was calibrated, where and with what.

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "gtest/gtest.h"
#include "pim/proto/program.pb.h"
#include "pim/runtime/sha256.h"

namespace pim {
namespace {

constexpr char kTypical[] = "sim:profile=typical,seed=1";
constexpr char kIdeal[] = "sim:profile=ideal";
constexpr char kData[] = "/usr/share/datasets/fashion-mnist";
constexpr int kImages = 64;     // test images per run
constexpr int kBnSamples = 32;  // calibration images

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class PimcalEndToEnd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(::testing::TempDir() + "/pimcal_e2e");
    std::filesystem::remove_all(*dir_);  // the files are built once per run, never reused across runs
    std::filesystem::create_directories(*dir_);
  }
  static void TearDownTestSuite() { delete dir_; }

  void SetUp() override {
    if (!std::filesystem::exists(std::string(kData) + "/t10k-images-idx3-ubyte.gz")) {
      GTEST_SKIP() << "Fashion-MNIST not installed in " << kData;
    }
  }

  static int Tool(const std::string& tool, const std::string& args, std::string* out = nullptr,
                  std::string* err = nullptr) {
    const std::string cmd = std::string(PIM_BINARY_DIR) + "/bin/" + tool + " " + args + " >" + *dir_ + "/out.txt 2>" +
                            *dir_ + "/err.txt </dev/null";
    const int status = std::system(cmd.c_str());
    if (out) *out = Slurp(*dir_ + "/out.txt");
    if (err) *err = Slurp(*dir_ + "/err.txt");
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  // Runs once per suite: the model, its BN-calibrated Program and the chip's calibration file.
  static std::string File(const std::string& name) { return *dir_ + "/" + name; }

  static std::string Model() {
    if (!std::filesystem::exists(File("cnn.pimb"))) {
      std::string err;
      EXPECT_EQ(Tool("pimc", "compile " + std::string(PIM_SOURCE_DIR) +
                                 "/tools/qat/models/fmnist-cnn-native-b4.onnx -o " + File("cnn.pimb"),
                     nullptr, &err),
                0)
          << err;
    }
    return File("cnn.pimb");
  }

  static std::string Bn(const std::string& calibration = "") {
    const std::string out = File(calibration.empty() ? "cnn.bn.pimb" : "cnn.bnlin.pimb");
    if (!std::filesystem::exists(out)) {
      std::string err;
      EXPECT_EQ(Tool("pimcal", "bn " + Model() + " --device " + kTypical + " --samples " + std::to_string(kBnSamples) +
                                   (calibration.empty() ? "" : " --calibration " + calibration) + " -o " + out,
                     nullptr, &err),
                0)
          << err;
    }
    return out;
  }

  static std::string Adc() {
    if (!std::filesystem::exists(File("typ.cal.pb"))) {
      std::string err;
      // Every macro the Program uses, at its resolution and mode; a short sweep.
      EXPECT_EQ(Tool("pimcal", std::string("adc --device ") + kTypical + " --program " + Model() +
                                   " --repeats 2 --step-settings 2 -o " + File("typ.cal.pb"),
                     nullptr, &err),
                0)
          << err;
    }
    return File("typ.cal.pb");
  }

  // Top-1 accuracy in percent of `pimb` on the first kImages test images.
  static double Accuracy(const std::string& pimb, const std::string& device, const std::string& calibration = "") {
    std::string out, err;
    const int rc = Tool("pimrun", pimb + " --device " + device + " --json --limit " + std::to_string(kImages) +
                                      " --input " + kData + "/t10k-images-idx3-ubyte.gz --labels " + kData +
                                      "/t10k-labels-idx1-ubyte.gz" +
                                      (calibration.empty() ? "" : " --calibration " + calibration),
                        &out, &err);
    EXPECT_EQ(rc, 0) << err;
    std::smatch m;
    if (!std::regex_search(out, m, std::regex("\"accuracy\": ([0-9.eE+-]+)"))) {
      ADD_FAILURE() << "no accuracy in: " << out;
      return -1;
    }
    return 100 * std::stod(m[1]);
  }

  static std::string* dir_;
};

std::string* PimcalEndToEnd::dir_ = nullptr;

TEST_F(PimcalEndToEnd, BnCalibrationOnTheTypicalChipRecoversTheIdealChipsAccuracy) {
  const double ideal = Accuracy(Model(), kIdeal);
  const double typical = Accuracy(Model(), kTypical);
  const double calibrated = Accuracy(Bn(), kTypical);
  std::printf("accuracy on %d images: ideal %.1f, typical %.1f, typical after pimcal bn %.1f\n", kImages, ideal,
              typical, calibrated);
  // The uncorrected model suffers on this chip (else the test shows nothing) ...
  EXPECT_LT(typical, ideal - 10);
  // ... and BN calibration on the chip brings most of it back (64 images and 32 calibration
  // images: a coarse bound; the robustness table has the precise figures).
  EXPECT_GT(calibrated, typical + 20);
  EXPECT_GT(calibrated, ideal - 8);
}

TEST_F(PimcalEndToEnd, BnCalibratedProgramRecordsDeviceDataSamplesAndLayers) {
  proto::Program original, calibrated;
  ASSERT_TRUE(original.ParseFromString(Slurp(Model())));
  ASSERT_TRUE(calibrated.ParseFromString(Slurp(Bn())));
  EXPECT_FALSE(original.has_bn_calibration());
  const proto::BnCalibrationRecord& r = calibrated.bn_calibration();
  EXPECT_EQ(r.device(), kTypical);
  EXPECT_EQ(r.device_serial(), "sim-1") << "the simulator reports sim-<seed>";
  EXPECT_EQ(r.data(), std::string(kData) + "/train-images-idx3-ubyte.gz");
  EXPECT_EQ(r.samples(), uint32_t(kBnSamples));
  std::vector<std::string> bn_steps;
  for (const proto::Step& s : original.steps()) {
    if (s.kind_case() == proto::Step::kBatchNorm) bn_steps.push_back(s.name());
  }
  ASSERT_EQ(bn_steps.size(), 5u);
  EXPECT_EQ(std::vector<std::string>(r.layers().begin(), r.layers().end()), bn_steps);
}

TEST_F(PimcalEndToEnd, LinearizationWithTheMeasuredCurvesHelpsTheUncorrectedModel) {
  const double typical = Accuracy(Model(), kTypical);
  const double linearized = Accuracy(Model(), kTypical, Adc());
  // BN statistics measured through the linearized codes, run linearized ("both").
  const double both = Accuracy(Bn(Adc()), kTypical, Adc());
  std::printf("accuracy on %d images, typical: %.1f, linearized %.1f, BN calibrated and linearized %.1f\n", kImages,
              typical, linearized, both);
  EXPECT_GT(linearized, typical + 10);
  EXPECT_GT(both, typical + 10);
}

TEST_F(PimcalEndToEnd, BnCalibrationRecordsTheAdcCalibrationAndPimrunHoldsTheProgramToIt) {
  proto::Program raw, through;
  ASSERT_TRUE(raw.ParseFromString(Slurp(Bn())));
  ASSERT_TRUE(through.ParseFromString(Slurp(Bn(Adc()))));
  EXPECT_FALSE(raw.bn_calibration().has_adc_calibration());
  ASSERT_TRUE(through.bn_calibration().has_adc_calibration());
  const proto::AdcCalibrationRef& ref = through.bn_calibration().adc_calibration();
  EXPECT_EQ(ref.path(), Adc());
  EXPECT_EQ(ref.sha256(), runtime::Sha256Hex(Slurp(Adc())));
  EXPECT_EQ(ref.device_serial(), "sim-1");

  // pimc inspect shows how the statistics were measured.
  std::string out, err;
  ASSERT_EQ(Tool("pimc", "inspect --no-tiles " + Bn(Adc()), &out, &err), 0) << err;
  EXPECT_NE(out.find("measured through ADC calibration " + Adc() + " (sha256 " + ref.sha256()), std::string::npos)
      << out;
  ASSERT_EQ(Tool("pimc", "inspect --no-tiles " + Bn(), &out, &err), 0) << err;
  EXPECT_NE(out.find("measured on raw ADC codes"), std::string::npos) << out;

  // pimrun runs each Program only the way its statistics were measured.
  const std::string run = std::string(" --device ") + kTypical + " --limit 1 --input " + kData + "/t10k-images-idx3-ubyte.gz";
  EXPECT_EQ(Tool("pimrun", Bn(Adc()) + run, &out, &err), 1);
  EXPECT_NE(err.find("measured through the ADC calibration '" + Adc() + "'"), std::string::npos) << err;
  EXPECT_EQ(Tool("pimrun", Bn() + run + " --calibration " + Adc(), &out, &err), 1);
  EXPECT_NE(err.find("measured on raw ADC codes"), std::string::npos) << err;
  ASSERT_EQ(Tool("pimrun", Bn(Adc()) + run + " --calibration " + Adc(), &out, &err), 0) << err;
  EXPECT_NE(out.find("bn calibration: 5 BatchNorm steps on " + std::string(kTypical) + " (serial sim-1), " +
                     std::to_string(kBnSamples) + " samples of "),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("through ADC calibration " + Adc()), std::string::npos) << out;
  // A copy of the file elsewhere is the same calibration; a different one is not.
  const std::string copy = File("copy.cal.pb");
  std::filesystem::copy_file(Adc(), copy, std::filesystem::copy_options::overwrite_existing);
  EXPECT_EQ(Tool("pimrun", Bn(Adc()) + run + " --calibration " + copy, &out, &err), 0) << err;
  const std::string other = File("typ2.cal.pb");
  ASSERT_EQ(Tool("pimcal", std::string("adc --device ") + kTypical + " --program " + Model() +
                               " --repeats 2 --step-settings 1 -o " + other, nullptr, &err),
            0)
      << err;
  EXPECT_EQ(Tool("pimrun", Bn(Adc()) + run + " --calibration " + other, &out, &err), 1);
  EXPECT_NE(err.find("a different file '" + other + "'"), std::string::npos) << err;
  // ... unless the user insists.
  EXPECT_EQ(Tool("pimrun", Bn(Adc()) + run + " --calibration " + other + " --allow-calibration-mismatch", &out, &err),
            0)
      << err;
  EXPECT_NE(err.find("running anyway"), std::string::npos) << err;
}

TEST_F(PimcalEndToEnd, CalibrationOfOtherMacrosIsRefusedByName) {
  const std::string partial = File("macro0.cal.pb");
  std::string err;
  ASSERT_EQ(Tool("pimcal", std::string("adc --device ") + kTypical + " --macros 0 --adc-bits 4 --modes signed "
                                 "--repeats 2 --step-settings 1 -o " + partial, nullptr, &err),
            0)
      << err;
  const int rc = Tool("pimrun", Model() + " --device " + kTypical + " --limit 1 --input " + kData +
                                    "/t10k-images-idx3-ubyte.gz --calibration " + partial,
                      nullptr, &err);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(err.find("no 4-bit signed curve for macro"), std::string::npos) << err;
}

}  // namespace
}  // namespace pim
