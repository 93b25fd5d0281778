#include "pim/compiler/compiler.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "pim/runtime/sha256.h"
#include "gtest/gtest.h"
#include "pim/compiler/program_report.h"
#include "pim/runtime/program_file.h"
#include "testing_util.h"

namespace pim::compiler {
namespace {

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(Compiler, SameInputGivesIdenticalBytes) {
  for (const char* model : {"qdq_conv.onnx", "qonnx_conv.onnx", "qdq_mlp.onnx", "float_layer.onnx"}) {
    absl::StatusOr<proto::Program> a = CompileFile(testing::ModelPath(model), testing::DefaultTarget(), {});
    absl::StatusOr<proto::Program> b = CompileFile(testing::ModelPath(model), testing::DefaultTarget(), {});
    ASSERT_TRUE(a.ok() && b.ok()) << model;
    EXPECT_EQ(SerializeProgram(*a), SerializeProgram(*b)) << model;
  }
}

TEST(Compiler, RecordsSourceAndTarget) {
  const std::string path = testing::ModelPath("qdq_conv.onnx");
  absl::StatusOr<proto::Program> p = CompileFile(path, testing::DefaultTarget(), {});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->format_version(), runtime::kProgramFormatVersion);
  EXPECT_EQ(p->source_model_name(), "qdq_conv.onnx");
  EXPECT_EQ(p->source_model_sha256(), runtime::Sha256Hex(ReadBytes(path)));
  EXPECT_EQ(p->training(), "pim-qat");
  EXPECT_EQ(p->target().name(), testing::DefaultTarget().name);
  EXPECT_EQ(p->producer(), ProducerString());
  ASSERT_EQ(p->inputs_size(), 1);
  EXPECT_EQ(p->inputs(0).shape(0), -1);
}

TEST(Compiler, WrittenFileLoadsInTheRuntime) {
  absl::StatusOr<proto::Program> p = CompileFile(testing::ModelPath("qonnx_conv.onnx"), testing::DefaultTarget(), {});
  ASSERT_TRUE(p.ok()) << p.status();
  const std::string out = std::string(PIM_BINARY_DIR) + "/compiler_test_qonnx.pimb";
  ASSERT_TRUE(WriteProgramFile(*p, out).ok());
  absl::StatusOr<proto::Program> loaded = runtime::ReadProgramFile(out);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(SerializeProgram(*loaded), SerializeProgram(*p));
  std::remove(out.c_str());
}

TEST(Compiler, ErrorsNameTheFile) {
  const runtime::ChipSpec chip = testing::DefaultTarget();
  absl::StatusOr<proto::Program> p = CompileFile(testing::ModelPath("truncated.onnx"), chip, {});
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message(), testing::ModelPath("truncated.onnx") +
                                      ": not an ONNX model (the file is truncated or is not an ONNX protobuf)");
  p = CompileFile("/nonexistent/model.onnx", chip, {});
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message(), "/nonexistent/model.onnx: cannot open model file (No such file or directory)");
  p = CompileFile(testing::ModelPath("unsupported_op.onnx"), chip, {});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("node 'weird': unsupported op Sin"), std::string::npos);
}

TEST(Compiler, WriteToAMissingDirectoryFails) {
  absl::StatusOr<proto::Program> p = CompileFile(testing::ModelPath("float_layer.onnx"), testing::DefaultTarget(), {});
  ASSERT_TRUE(p.ok());
  absl::Status s = WriteProgramFile(*p, "/nonexistent/dir/x.pimb");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/nonexistent/dir/x.pimb: cannot write"), std::string::npos);
}

TEST(ProgramReport, JsonNamesEveryLayer) {
  absl::StatusOr<proto::Program> p = CompileFile(testing::ModelPath("qdq_conv.onnx"), testing::DefaultTarget(), {});
  ASSERT_TRUE(p.ok());
  ReportOptions o;
  o.json = true;
  o.tiles = true;
  const std::string json = FormatProgramReport(*p, o);
  for (const char* needle : {"\"name\":\"conv1\"", "\"adc_step_rule\":\"trained\"", "\"placement\":\"digital\"",
                             "\"tile_list\":[", "\"load_phases\":[{\"index\":0"}) {
    EXPECT_NE(json.find(needle), std::string::npos) << needle;
  }
  const std::string text = FormatProgramReport(*p, {});
  EXPECT_NE(text.find("Delta 2.5 (trained)"), std::string::npos) << text;
}

}  // namespace
}  // namespace pim::compiler
