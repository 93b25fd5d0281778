// pimrun as a user runs it: the real binary on real files; exit codes, messages and outputs.

#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pim/runtime/dataset.h"
#include "pim/runtime/executor.h"
#include "pim/runtime/npy.h"
#include "pim/sim/sim_backend.h"
#include "testing/test_programs.h"

namespace pim {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

struct Result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

Result Pimrun(const std::string& args) {
  const std::string dir = ::testing::TempDir();
  const std::string cmd = std::string(PIM_BINARY_DIR) + "/bin/pimrun " + args + " >" + dir + "/out.txt 2>" + dir +
                          "/err.txt </dev/null";
  const int status = std::system(cmd.c_str());
  Result r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = Slurp(dir + "/out.txt");
  r.err = Slurp(dir + "/err.txt");
  return r;
}

class PimrunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/pimrun_test";
    std::filesystem::create_directories(dir_);
    model_ = dir_ + "/mlp.pimb";
    program_ = runtime::testing::ImageMlp();
    std::ofstream(model_, std::ios::binary) << program_.SerializeAsString();
    runtime::Tensor x({6, 1, 28, 28});
    for (size_t i = 0; i < x.data.size(); ++i) x.data[i] = double(float(double((i * 7919) % 256) / 255.0));
    images_ = x;
    ASSERT_TRUE(runtime::WriteNpyFloat32(dir_ + "/x.npy", x).ok());
  }

  // What the executor computes in process for the same inputs.
  runtime::Tensor Expected(const runtime::Tensor& x) {
    runtime::OpenOptions options;
    options.target = *runtime::ChipSpecFromProto(program_.target());
    auto backend = *sim::OpenSimBackend(runtime::DeviceUri{}, options);
    auto ex = *runtime::Executor::Create(program_, backend.get());
    return (*ex->Run({{"input", x}})).outputs.at("logits");
  }

  std::string dir_, model_;
  proto::Program program_;
  runtime::Tensor images_;
};

TEST_F(PimrunTest, WritesLogitsAndAccuracyAsJson) {
  // Labels chosen as the expected argmax for the first 4 samples, wrong for the last 2.
  runtime::Tensor want = Expected(images_);
  std::vector<int64_t> labels;
  for (int i = 0; i < 6; ++i) {
    const double* row = want.data.data() + i * 10;
    const int64_t best = std::max_element(row, row + 10) - row;
    labels.push_back(i < 4 ? best : (best + 1) % 10);
  }
  std::string npy = runtime::NpyFloat32Bytes(runtime::Tensor({6}, std::vector<double>(labels.begin(), labels.end())));
  // Same layout with an int64 dtype: rewrite the header's descr and the data.
  npy.replace(npy.find("<f4"), 3, "<i8");
  npy.resize(npy.size() - 6 * 4);
  npy.append(reinterpret_cast<const char*>(labels.data()), 6 * 8);
  std::ofstream(dir_ + "/y.npy", std::ios::binary) << npy;

  Result r = Pimrun(model_ + " --input " + dir_ + "/x.npy --labels " + dir_ + "/y.npy --output " + dir_ +
                    "/logits.npy --json --batch 4 --profile");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"accuracy\": 0.66666666666666663"));
  EXPECT_THAT(r.out, HasSubstr("\"samples\": 6"));
  EXPECT_THAT(r.out, HasSubstr("\"step\": \"fc1\", \"kind\": \"pim\", \"calls\": 2"));
  EXPECT_EQ(r.err, "");
  absl::StatusOr<runtime::NpyArray> logits = runtime::ReadNpy(dir_ + "/logits.npy");
  ASSERT_TRUE(logits.ok()) << logits.status();
  EXPECT_EQ(logits->dtype, "<f4");
  EXPECT_EQ(logits->shape, (std::vector<int64_t>{6, 10}));
  for (size_t i = 0; i < want.data.size(); ++i) EXPECT_EQ(logits->data[i], double(float(want.data[i])));
}

TEST_F(PimrunTest, RunsFashionMnistIdxWithLimit) {
  const std::string d = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(d + "/t10k-images-idx3-ubyte.gz")) GTEST_SKIP() << "no Fashion-MNIST at " << d;
  Result r = Pimrun(model_ + " --input " + d + "/t10k-images-idx3-ubyte.gz --labels " + d +
                    "/t10k-labels-idx1-ubyte.gz --limit 50");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The accuracy pimrun prints is the one the executor gives on the same images.
  runtime::Tensor x = *runtime::ReadInputFile(d + "/t10k-images-idx3-ubyte.gz");
  std::vector<int64_t> labels = *runtime::ReadLabelFile(d + "/t10k-labels-idx1-ubyte.gz");
  runtime::Tensor want = Expected(runtime::SliceBatch(x, 0, 50));
  int correct = 0;
  for (int i = 0; i < 50; ++i) {
    const double* row = want.data.data() + i * 10;
    correct += (std::max_element(row, row + 10) - row) == labels[size_t(i)];
  }
  char line[64];
  std::snprintf(line, sizeof(line), "accuracy: %.4f\n", correct / 50.0);
  EXPECT_THAT(r.out, HasSubstr(line));
  EXPECT_THAT(r.out, HasSubstr("samples: 50 in"));
}

TEST_F(PimrunTest, BadInputShapeIsOneClearError) {
  runtime::Tensor x({2, 1, 27, 28});
  ASSERT_TRUE(runtime::WriteNpyFloat32(dir_ + "/bad.npy", x).ok());
  Result r = Pimrun(model_ + " --input " + dir_ + "/bad.npy");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "pimrun: " + dir_ + "/bad.npy: input shape [2, 1, 27, 28] does not fit the model's input [N, 1, 28, 28]\n");
}

TEST_F(PimrunTest, CorruptedProgramIsOneClearError) {
  std::string bytes = Slurp(model_);
  bytes.resize(bytes.size() / 2);
  std::ofstream(dir_ + "/cut.pimb", std::ios::binary) << bytes;
  Result r = Pimrun(dir_ + "/cut.pimb --input " + dir_ + "/x.npy");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, StartsWith("pimrun: " + dir_ + "/cut.pimb: "));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST_F(PimrunTest, WrongDtypeAndMissingFilesAreErrors) {
  std::string npy = Slurp(dir_ + "/x.npy");
  npy.replace(npy.find("<f4"), 3, "<i4");
  std::ofstream(dir_ + "/int.npy", std::ios::binary) << npy;
  Result r = Pimrun(model_ + " --input " + dir_ + "/int.npy");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("int.npy: dtype '<i4', model inputs must be float32"));
  r = Pimrun(model_ + " --input " + dir_ + "/none.npy");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("none.npy: cannot open"));
}

TEST_F(PimrunTest, BadDataIsRefusedBeforeTheRun) {
  struct Case {
    std::string args, message;
  };
  runtime::Tensor empty({0, 1, 28, 28});
  ASSERT_TRUE(runtime::WriteNpyFloat32(dir_ + "/empty.npy", empty).ok());
  runtime::Tensor nan = images_;
  nan.data[2 * 784 + 5] = std::nan("");
  ASSERT_TRUE(runtime::WriteNpyFloat32(dir_ + "/nan.npy", nan).ok());
  auto labels = [&](const std::string& name, const std::string& dtype, const std::vector<uint64_t>& values) {
    std::string header = "{'descr': '" + dtype + "', 'fortran_order': False, 'shape': (" + std::to_string(values.size()) + ",), }";
    header.resize(117, ' ');  // 10 + 118 bytes: the data starts 64-byte aligned
    header += '\n';
    std::ofstream out(dir_ + "/" + name, std::ios::binary);
    out << std::string("\x93NUMPY\x01\x00", 8) << char(header.size() & 0xff) << char(header.size() >> 8) << header;
    for (uint64_t v : values) out.write(reinterpret_cast<const char*>(&v), 8);
  };
  labels("huge.npy", "<u8", {1, 2, 3, (uint64_t{1} << 63) + 5, 0, 1});
  labels("eleven.npy", "<i8", {1, 2, 3, 11, 0, 1});
  const std::string x = " --input " + dir_ + "/x.npy";
  const Case cases[] = {
      {" --input " + dir_ + "/empty.npy", dir_ + "/empty.npy: holds no samples"},
      {" --input " + dir_ + "/nan.npy", dir_ + "/nan.npy: sample 2 holds nan at element 5; inputs must be finite"},
      {x + " --labels " + dir_ + "/huge.npy", dir_ + "/huge.npy: label 3 is larger than 2147483647"},
      {x + " --labels " + dir_ + "/eleven.npy", dir_ + "/eleven.npy: label 3 is 11, the model has 10 outputs"},
      {x + " --output " + dir_ + "/no/such/out.npy", "--output " + dir_ + "/no/such/out.npy: directory '" + dir_ + "/no/such' does not exist"},
      {x + " --calibration " + dir_, dir_ + ": is a directory, not a calibration file"},
  };
  for (const Case& c : cases) {
    Result r = Pimrun(model_ + c.args);
    EXPECT_EQ(r.exit_code, 1) << c.args;
    EXPECT_EQ(r.err, "pimrun: " + c.message + "\n") << c.args;
  }
}

TEST_F(PimrunTest, UsageAndDeviceErrors) {
  EXPECT_EQ(Pimrun(model_ + " --input " + dir_ + "/x.npy --frobnicate").exit_code, 2);
  EXPECT_EQ(Pimrun(model_).exit_code, 2);
  EXPECT_EQ(Pimrun(model_ + " --input " + dir_ + "/x.npy --batch 0").exit_code, 2);
  Result usage = Pimrun(model_ + " --input " + dir_ + "/x.npy --limit -1");
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_THAT(usage.err, HasSubstr("--limit: must be an integer in [1, 1099511627776], got '-1'"));
  usage = Pimrun(model_ + " --input " + dir_ + "/x.npy --limit 12x");
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_THAT(usage.err, HasSubstr("--limit: must be an integer in [1, 1099511627776], got '12x'"));
  EXPECT_EQ(Pimrun(model_ + " --input " + dir_ + "/x.npy --limit 0").exit_code, 2);
  EXPECT_EQ(Pimrun(model_ + " --input " + dir_ + "/x.npy --output ''").exit_code, 2);
  Result r = Pimrun(model_ + " --input " + dir_ + "/x.npy --device pcie:3");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("device 'pcie:3': unknown device kind 'pcie'"));
  r = Pimrun(model_ + " --input " + dir_ + "/x.npy --device usb0");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("usb"));
}

}  // namespace
}  // namespace pim
