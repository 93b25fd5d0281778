// Runs the pimc binary as a user would: exit codes, one-line errors, files written.
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace {

struct Result {
  int exit_code = -1;
  std::string out;  // stdout and stderr together
};

Result RunPimc(const std::string& args) {
  const std::string command = std::string(PIM_BINARY_DIR) + "/bin/pimc " + args + " 2>&1";
  Result r;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return r;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) r.out.append(buffer, n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string Model(const std::string& name) { return std::string(PIM_SOURCE_DIR) + "/tests/data/onnx/" + name; }
std::string Out(const std::string& name) { return std::string(PIM_BINARY_DIR) + "/pimc_test_" + name; }

TEST(Pimc, CompileThenInspect) {
  Result c = RunPimc("compile " + Model("qdq_conv.onnx") + " -o " + Out("a.pimb"));
  ASSERT_EQ(c.exit_code, 0) << c.out;
  EXPECT_NE(c.out.find("conv2"), std::string::npos);
  EXPECT_NE(c.out.find("Delta 2.5 (trained)"), std::string::npos) << c.out;
  Result i = RunPimc("inspect " + Out("a.pimb") + " --json");
  ASSERT_EQ(i.exit_code, 0) << i.out;
  EXPECT_EQ(i.out.front(), '{');
  EXPECT_NE(i.out.find("\"tile_list\""), std::string::npos);
  std::remove(Out("a.pimb").c_str());
}

TEST(Pimc, FlagsReachTheProgram) {
  Result c = RunPimc("compile " + Model("qdq_conv.onnx") + " -o " + Out("b.pimb") +
                 " --scheme differential --adc-bits 5 --rows 32 --adc-step 3 --json");
  ASSERT_EQ(c.exit_code, 0) << c.out;
  EXPECT_NE(c.out.find("\"scheme\":\"differential\",\"rows\":32,\"adc_bits\":5,\"adc_step\":3,"), std::string::npos)
      << c.out;
  std::remove(Out("b.pimb").c_str());
}

TEST(Pimc, BadModelIsExitOneWithOneLine) {
  for (const char* model : {"truncated.onnx", "not_onnx.onnx", "unsupported_op.onnx", "missing.onnx"}) {
    Result c = RunPimc("compile " + Model(model) + " -o " + Out("c.pimb"));
    EXPECT_EQ(c.exit_code, 1) << model << ": " << c.out;
    EXPECT_EQ(c.out.rfind("pimc: ", 0), 0u) << c.out;
    EXPECT_NE(c.out.find(model), std::string::npos) << c.out;
    EXPECT_EQ(std::count(c.out.begin(), c.out.end(), '\n'), 1) << c.out;
    EXPECT_FALSE(std::ifstream(Out("c.pimb")).good()) << "no output file after a failure";
  }
}

TEST(Pimc, UnwritableOutputIsRefusedBeforeCompiling) {
  Result c = RunPimc("compile " + Model("qdq_conv.onnx") + " -o " + Out("no/such/dir/x.pimb"));
  EXPECT_EQ(c.exit_code, 1) << c.out;
  EXPECT_NE(c.out.find("does not exist"), std::string::npos) << c.out;
  Result d = RunPimc("inspect " + std::string(PIM_BINARY_DIR));  // a directory
  EXPECT_EQ(d.exit_code, 1) << d.out;
  EXPECT_NE(d.out.find("is a directory"), std::string::npos) << d.out;
}

TEST(Pimc, BadTargetAndBadProgramAreExitOne) {
  Result c = RunPimc("compile " + Model("qdq_conv.onnx") + " -o " + Out("d.pimb") + " --target " + Model("not_onnx.onnx"));
  EXPECT_EQ(c.exit_code, 1) << c.out;
  Result i = RunPimc("inspect " + Model("qdq_conv.onnx"));  // an ONNX file is not a Program
  EXPECT_EQ(i.exit_code, 1) << i.out;
  EXPECT_NE(i.out.find("qdq_conv.onnx"), std::string::npos) << i.out;
}

TEST(Pimc, UsageErrorsAreExitTwo) {
  EXPECT_EQ(RunPimc("").exit_code, 2);
  EXPECT_EQ(RunPimc("compile").exit_code, 2);
  EXPECT_EQ(RunPimc("compile " + Model("qdq_conv.onnx")).exit_code, 2);  // no -o
  EXPECT_EQ(RunPimc("compile " + Model("qdq_conv.onnx") + " -o x.pimb --scheme analog").exit_code, 2);
  EXPECT_EQ(RunPimc("compile " + Model("qdq_conv.onnx") + " -o x.pimb --rows -3").exit_code, 2);
  EXPECT_EQ(RunPimc("frobnicate").exit_code, 2);
  EXPECT_NE(RunPimc("frobnicate").out.find("unknown command 'frobnicate'"), std::string::npos);
  // Steps the runtime could not load are refused here, not at run time.
  for (const char* step : {"1e300", "1e-31", "nan", "inf", "2x"}) {
    Result r = RunPimc("compile " + Model("qdq_conv.onnx") + " -o x.pimb --adc-step " + step);
    EXPECT_EQ(r.exit_code, 2) << step;
    EXPECT_NE(r.out.find("must be a finite number in [1e-30, 1e+30], got '" + std::string(step) + "'"), std::string::npos)
        << r.out;
  }
  EXPECT_EQ(RunPimc("compile " + Model("qdq_conv.onnx") + " -o ''").exit_code, 2);
  EXPECT_EQ(RunPimc("--help").exit_code, 0);
}

}  // namespace
