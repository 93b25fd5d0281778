#include "import/onnx_importer.h"

#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "import/tensor_reader.h"
#include "ir/shape_inference.h"
#include "testing_util.h"

namespace pim::compiler {
namespace {

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

absl::StatusOr<ir::Graph> Import(const std::string& name) {
  return ImportOnnxModel(ReadBytes(testing::ModelPath(name)), name);
}

const ir::Node* FindNode(const ir::Graph& g, const std::string& name) {
  for (const ir::Node& n : g.nodes) {
    if (n.name == name) return &n;
  }
  return nullptr;
}

TEST(OnnxImporter, ReadsQdqModel) {
  absl::StatusOr<ir::Graph> g = Import("qdq_conv.onnx");
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->opset, 13);
  EXPECT_EQ(g->metadata.at("pim.training"), "pim-qat");
  ASSERT_EQ(g->inputs.size(), 1u);
  EXPECT_EQ(g->inputs[0].shape, (ir::Shape{ir::kBatch, 1, 8, 8}));
  const ir::Tensor* w = g->FindInitializer("conv1_wq");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->type, ir::ElemType::kInt8);
  EXPECT_EQ(w->dims, (ir::Shape{4, 1, 3, 3}));
  ASSERT_NE(FindNode(*g, "conv2"), nullptr);
  EXPECT_EQ(g->Producer("conv2_out")->name, "conv2");
  ASSERT_TRUE(ir::InferShapes(*g).ok());
  EXPECT_EQ(g->shapes.at("conv3_out"), (ir::Shape{ir::kBatch, 8, 2, 2}));
  EXPECT_EQ(g->shapes.at("logits"), (ir::Shape{ir::kBatch, 10}));
  EXPECT_EQ(g->types.at("a1_q"), ir::ElemType::kUInt8);
}

TEST(OnnxImporter, ReadsQonnxModel) {
  absl::StatusOr<ir::Graph> g = Import("qonnx_conv.onnx");
  ASSERT_TRUE(g.ok()) << g.status();
  const ir::Node* q = FindNode(*g, "qw1");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->domain, kQonnxDomain);
  EXPECT_EQ(q->IntAttr("narrow", 0), 1);
  ASSERT_TRUE(ir::InferShapes(*g).ok());
  EXPECT_EQ(g->shapes.at("conv1_out"), (ir::Shape{ir::kBatch, 6, 6, 6}));
  EXPECT_EQ(g->shapes.at("flat"), (ir::Shape{ir::kBatch, 54}));
}

TEST(OnnxImporter, TruncatedFileNamesTheFile) {
  absl::StatusOr<ir::Graph> g = Import("truncated.onnx");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().message(),
            "truncated.onnx: not an ONNX model (the file is truncated or is not an ONNX protobuf)");
}

TEST(OnnxImporter, TextFileIsNotOnnx) {
  absl::StatusOr<ir::Graph> g = Import("not_onnx.onnx");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("not_onnx.onnx: not an ONNX model"), std::string::npos) << g.status();
}

TEST(OnnxImporter, EmptyBytesAreNotOnnx) {
  absl::StatusOr<ir::Graph> g = ImportOnnxModel("", "empty.onnx");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("empty.onnx: not an ONNX model"), std::string::npos) << g.status();
}

TEST(OnnxImporter, UnsupportedOpNamesNodeAndOpType) {
  absl::StatusOr<ir::Graph> g = Import("unsupported_op.onnx");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("node 'weird': unsupported op Sin"), std::string::npos) << g.status();
}

TEST(OnnxImporter, OldOpsetIsRefused) {
  onnx::ModelProto model;
  ASSERT_TRUE(model.ParseFromString(ReadBytes(testing::ModelPath("float_layer.onnx"))));
  model.mutable_opset_import(0)->set_version(11);
  absl::StatusOr<ir::Graph> g = ImportOnnxModel(model.SerializeAsString(), "old.onnx");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("opset 11 is too old"), std::string::npos) << g.status();
}

TEST(OnnxImporter, CheckerErrorsAreReturnedNotThrown) {
  onnx::ModelProto model;
  ASSERT_TRUE(model.ParseFromString(ReadBytes(testing::ModelPath("float_layer.onnx"))));
  // A Relu with two inputs passes our own checks but not the ONNX checker.
  onnx::NodeProto* relu = model.mutable_graph()->add_node();
  relu->set_op_type("Relu");
  relu->set_name("bad_relu");
  relu->add_input("logits");
  relu->add_input("logits");
  relu->add_output("extra");
  absl::StatusOr<ir::Graph> g = ImportOnnxModel(model.SerializeAsString(), "bad.onnx");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("bad.onnx: ONNX checker"), std::string::npos) << g.status();
}

TEST(TensorReader, ReadsTypedInt8AndRawFloat) {
  onnx::TensorProto t;
  t.set_data_type(onnx::TensorProto_DataType_INT8);
  t.add_dims(3);
  t.add_int32_data(-7);
  t.add_int32_data(0);
  t.add_int32_data(5);
  absl::StatusOr<ir::Tensor> r = ReadTensor(t, "w");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->ints, (std::vector<int64_t>{-7, 0, 5}));

  onnx::TensorProto f;
  f.set_data_type(onnx::TensorProto_DataType_FLOAT);
  f.add_dims(2);
  const float values[2] = {0.1f, -2.5f};
  f.set_raw_data(std::string(reinterpret_cast<const char*>(values), sizeof(values)));
  absl::StatusOr<ir::Tensor> rf = ReadTensor(f, "s");
  ASSERT_TRUE(rf.ok()) << rf.status();
  EXPECT_EQ(rf->values, (std::vector<double>{static_cast<double>(0.1f), -2.5}));
}

TEST(TensorReader, ExternalDataIsRefused) {
  onnx::TensorProto t;
  t.set_name("conv1_w");
  t.set_data_type(onnx::TensorProto_DataType_FLOAT);
  t.add_dims(4);
  t.set_data_location(onnx::TensorProto_DataLocation_EXTERNAL);
  auto* entry = t.add_external_data();
  entry->set_key("location");
  entry->set_value("weights.bin");
  absl::StatusOr<ir::Tensor> r = ReadTensor(t, "initializer 'conv1_w'");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("initializer 'conv1_w': external data is not supported"), std::string::npos);
}

TEST(TensorReader, SizeMismatchIsRefused) {
  onnx::TensorProto t;
  t.set_data_type(onnx::TensorProto_DataType_INT64);
  t.add_dims(3);
  t.add_int64_data(1);
  absl::StatusOr<ir::Tensor> r = ReadTensor(t, "shape");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "shape: int64_data holds 1 values, shape needs 3");
}

TEST(TensorReader, DeclaredSizeIsCheckedBeforeAnythingIsAllocated) {
  onnx::TensorProto t;
  t.set_data_type(onnx::TensorProto_DataType_INT8);
  t.add_dims(2147483647);  // 2 GiB of codes declared, one byte stored
  t.set_raw_data(std::string(1, '\0'));
  absl::StatusOr<ir::Tensor> r = ReadTensor(t, "initializer 'h'");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "initializer 'h': raw_data holds 1 bytes, shape needs 2147483647");
  onnx::TensorProto f;
  f.set_data_type(onnx::TensorProto_DataType_FLOAT);
  f.add_dims(2147483647);
  r = ReadTensor(f, "initializer 'f'");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "initializer 'f': float_data holds 0 values, shape needs 2147483647");
}

TEST(TensorReader, Int8OutOfRangeIsRefused) {
  onnx::TensorProto t;
  t.set_data_type(onnx::TensorProto_DataType_INT8);
  t.add_dims(1);
  t.add_int32_data(300);
  EXPECT_FALSE(ReadTensor(t, "w").ok());
}

}  // namespace
}  // namespace pim::compiler
