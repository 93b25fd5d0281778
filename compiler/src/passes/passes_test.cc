// Tests of the passes through the whole pipeline on the synthetic models (tests/data/onnx), plus
// direct tests of the arithmetic helpers.
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <tuple>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "import/tensor_reader.h"
#include "onnx/onnx_pb.h"
#include "passes/adc_step.h"
#include "passes/tiling.h"
#include "pim/compiler/compiler.h"
#include "testing_util.h"

namespace pim::compiler {
namespace {

absl::StatusOr<proto::Program> Compile(const std::string& model, const runtime::ChipSpec& target,
                                       const CompileOptions& options = {}) {
  return CompileFile(testing::ModelPath(model), target, options);
}

const proto::Step& FindStep(const proto::Program& p, const std::string& name) {
  for (const proto::Step& s : p.steps()) {
    if (s.name() == name) return s;
  }
  ADD_FAILURE() << "no step " << name;
  static proto::Step empty;
  return empty;
}

ir::Tensor Initializer(const std::string& model, const std::string& name) {
  std::ifstream in(testing::ModelPath(model), std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  onnx::ModelProto m;
  EXPECT_TRUE(m.ParseFromString(bytes.str()));
  for (const auto& t : m.graph().initializer()) {
    if (t.name() == name) return *ReadTensor(t, name);
  }
  ADD_FAILURE() << "no initializer " << name;
  return {};
}

runtime::ChipSpec SmallTarget(int macros, int banks, int rows, int columns) {
  runtime::ChipSpec chip = testing::DefaultTarget();
  chip.name = "small";
  chip.macros = macros;
  chip.banks_per_macro = banks;
  chip.rows = rows;
  chip.columns = columns;
  return chip;
}

// A fixture model changed by `edit`, compiled for the default target.
absl::StatusOr<proto::Program> CompileEdited(const std::string& model, const std::function<void(onnx::ModelProto&)>& edit,
                                             const CompileOptions& options = {}) {
  std::ifstream in(testing::ModelPath(model), std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  onnx::ModelProto m;
  EXPECT_TRUE(m.ParseFromString(bytes.str()));
  edit(m);
  return CompileModel(m.SerializeAsString(), model, testing::DefaultTarget(), options);
}

void AddMetadata(onnx::ModelProto& m, const std::string& key, const std::string& value) {
  onnx::StringStringEntryProto* e = m.add_metadata_props();
  e->set_key(key);
  e->set_value(value);
}

// Renames initializer `name` out of the way, so a replacement can take its name.
void RetireInitializer(onnx::ModelProto& m, const std::string& name) {
  for (onnx::TensorProto& t : *m.mutable_graph()->mutable_initializer()) {
    if (t.name() == name) t.set_name(name + "_old");
  }
}

onnx::NodeProto* FindNode(onnx::ModelProto& m, const std::string& name) {
  for (onnx::NodeProto& n : *m.mutable_graph()->mutable_node()) {
    if (n.name() == name) return &n;
  }
  ADD_FAILURE() << "no node " << name;
  return m.mutable_graph()->add_node();
}

void AddFloatInitializer(onnx::ModelProto& m, const std::string& name, const std::vector<int64_t>& dims, float value) {
  onnx::TensorProto* t = m.mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto_DataType_FLOAT);
  int64_t n = 1;
  for (int64_t d : dims) {
    t->add_dims(d);
    n *= d;
  }
  for (int64_t i = 0; i < n; ++i) t->add_float_data(value);
}

// ---------------------------------------------------------------- malformed models

TEST(MalformedModel, HostStepOnAConstantIsAnErrorNamingTheNode) {
  for (const char* node : {"bn1", "relu1"}) {
    absl::StatusOr<proto::Program> p = CompileEdited("qdq_conv.onnx", [&](onnx::ModelProto& m) {
      AddFloatInitializer(m, "c", {1, 4, 8, 8}, 0.5f);
      FindNode(m, node)->set_input(0, "c");
    });
    ASSERT_FALSE(p.ok()) << node;
    EXPECT_NE(p.status().message().find(std::string(node) + " ("), std::string::npos) << p.status();
    EXPECT_NE(p.status().message().find("data input 'c' is a constant"), std::string::npos) << p.status();
  }
}

TEST(MalformedModel, UnreadGraphInputIsAnError) {
  absl::StatusOr<proto::Program> p = CompileEdited("qonnx_conv.onnx", [](onnx::ModelProto& m) {
    onnx::ValueInfoProto* extra = m.mutable_graph()->add_input();
    *extra = m.graph().input(0);
    extra->set_name("mask");
  });
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("graph input 'mask' is not read by any node"), std::string::npos) << p.status();
}

TEST(MalformedModel, ASecondGraphInputIsAnErrorNamingBoth) {
  absl::StatusOr<proto::Program> p = CompileEdited("qonnx_conv.onnx", [](onnx::ModelProto& m) {
    onnx::ValueInfoProto* extra = m.mutable_graph()->add_input();
    *extra = m.graph().input(0);
    extra->set_name("second");
    FindNode(m, "qa1")->set_input(0, "second");  // both inputs are read
  });
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("the graph has 2 inputs ('"), std::string::npos) << p.status();
  EXPECT_NE(p.status().message().find("'second'); pimrun and pimcal feed a model exactly one"), std::string::npos)
      << p.status();
}

TEST(MalformedModel, NodeWithoutOutputIsAnError) {
  absl::StatusOr<proto::Program> p = CompileEdited("qonnx_conv.onnx", [](onnx::ModelProto& m) {
    FindNode(m, "qa1")->clear_output();
  });
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("node 'qa1' (Quant): has no output"), std::string::npos) << p.status();
}

TEST(MalformedModel, AbsorbedActivationScaleIsChecked) {
  for (float scale : {0.0f, -0.1f, std::numeric_limits<float>::infinity()}) {
    absl::StatusOr<proto::Program> p = CompileEdited("qdq_conv.onnx", [&](onnx::ModelProto& m) {
      AddFloatInitializer(m, "s", {}, scale);
      FindNode(m, "a1_dequant")->set_input(1, "s");
    });
    ASSERT_FALSE(p.ok()) << scale;
    EXPECT_NE(p.status().message().find("a1_dequant"), std::string::npos) << p.status();
    EXPECT_NE(p.status().message().find("must be positive and finite"), std::string::npos) << p.status();
  }
}

TEST(MalformedModel, SizesAProgramCannotHoldAreRefusedByName) {
  absl::StatusOr<proto::Program> p = CompileEdited("qdq_conv.onnx", [](onnx::ModelProto& m) {
    m.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(2)->set_dim_value(
        (int64_t{1} << 24) + 1);
  });
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("dimension 2 is 16777217, must be in [1, 16777216]"), std::string::npos) << p.status();
  p = CompileEdited("qdq_conv.onnx", [](onnx::ModelProto& m) {
    auto* shape = m.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape();
    shape->mutable_dim(2)->set_dim_value(int64_t{1} << 15);
    shape->mutable_dim(3)->set_dim_value(int64_t{1} << 15);
  });
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("elements per sample"), std::string::npos) << p.status();
}

TEST(MalformedModel, MatrixInputCodesWiderThanAByteAreRefusedByName) {
  absl::StatusOr<proto::Program> p = CompileEdited("qonnx_conv.onnx", [](onnx::ModelProto& m) {
    RetireInitializer(m, "qa0_bitwidth");
    RetireInitializer(m, "clip0_hi");
    AddFloatInitializer(m, "qa0_bitwidth", {}, 9.0f);
    AddFloatInitializer(m, "clip0_hi", {}, 511.0f * 0.06666667f);
  });
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("conv1 (Conv): input codes 'qa0_out:codes' have 9 bits"), std::string::npos)
      << p.status();
}

TEST(MalformedModel, PimRequestedForAHostLayerIsRefused) {
  CompileOptions require;
  require.require_pim = true;
  // conv2's input dequantizer gets a signed zero point: its weights stay quantized, its input is
  // not codes, so it can only run on the host.
  auto signed_input = [](onnx::ModelProto& m) {
    RetireInitializer(m, "a1_zp");
    onnx::TensorProto* zp = m.mutable_graph()->add_initializer();
    zp->set_name("a1_zp");
    zp->set_data_type(onnx::TensorProto_DataType_INT8);
    zp->add_int32_data(0);
  };
  absl::StatusOr<proto::Program> relaxed = CompileEdited("qdq_conv.onnx", signed_input);
  ASSERT_TRUE(relaxed.ok()) << relaxed.status();
  absl::StatusOr<proto::Program> p = CompileEdited("qdq_conv.onnx", signed_input, require);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("conv2: cannot be placed on the chip: input is not quantized"), std::string::npos)
      << p.status();
  p = CompileEdited("float_layer.onnx", [](onnx::ModelProto& m) { AddMetadata(m, "pim.layer.conv.placement", "pim"); });
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("conv: cannot be placed on the chip: float layer (no quantizers)"), std::string::npos)
      << p.status();
}

TEST(MalformedModel, InvalidNodesGetAnErrorNamingThem) {
  struct Case {
    std::string model;
    std::function<void(onnx::ModelProto&)> edit;
    std::string message;
  };
  auto set_int_attr = [](onnx::NodeProto* n, const std::string& name, int64_t v) {
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto_AttributeType_INT);
    a->set_i(v);
  };
  auto replace = [](onnx::ModelProto& m, const std::string& name, float value) {
    RetireInitializer(m, name);
    AddFloatInitializer(m, name, {}, value);
  };
  const Case cases[] = {
      {"qonnx_conv.onnx", [&](onnx::ModelProto& m) { FindNode(m, "softmax")->mutable_attribute(0)->set_i(0); },
       "node 'softmax' (Softmax): axis 0 out of range (and not the batch)"},
      {"qdq_conv.onnx",
       [&](onnx::ModelProto& m) {
         for (auto& o : *m.mutable_opset_import()) {
           if (o.domain().empty()) o.set_version(15);  // training_mode exists from opset 14
         }
         set_int_attr(FindNode(m, "bn1"), "training_mode", 1);
       },
       "node 'bn1' (BatchNormalization): training_mode 1 is not supported"},
      {"qdq_conv.onnx", [&](onnx::ModelProto& m) { replace(m, "a0_lo", 2.0f); },
       "a0_clip (Clip): range [2, 1] is empty or not a number"},
      {"qdq_conv.onnx", [&](onnx::ModelProto& m) { m.mutable_graph()->clear_output(); }, "the graph has no output"},
      {"qdq_conv.onnx",
       [&](onnx::ModelProto& m) {
         AddFloatInitializer(m, "s2", {}, 0.5f);
         FindNode(m, "a1_dequant")->set_input(1, "s2");
       },
       "a1_dequant (DequantizeLinear): scale 0.5 differs from the scale 0.1"},
      {"qdq_conv.onnx",
       [&](onnx::ModelProto& m) {
         RetireInitializer(m, "conv1_ws");
         AddFloatInitializer(m, "conv1_ws", {4, 1}, 0.02f);
       },
       "per-channel weight scale (4 values in 2-D, axis 0) must be 1-D"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<proto::Program> p = CompileEdited(c.model, c.edit);
    ASSERT_FALSE(p.ok()) << c.message;
    EXPECT_NE(p.status().message().find(c.message), std::string::npos) << p.status();
  }
}

TEST(MalformedModel, MetadataIsCheckedEvenWhereNoLayerReadsIt) {
  const std::pair<std::string, std::string> cases[] = {
      {"pim.scheme", "bogus"}, {"pim.rows", "-5"}, {"pim.adc_bits", "0"}};
  for (const auto& [key, value] : cases) {
    absl::StatusOr<proto::Program> p =
        CompileEdited("float_layer.onnx", [&](onnx::ModelProto& m) { AddMetadata(m, key, value); });
    ASSERT_FALSE(p.ok()) << key;
    EXPECT_NE(p.status().message().find("model metadata '" + key + "'"), std::string::npos) << p.status();
  }
  // Decimal only: strtod alone would read "0x10" as 16.
  absl::StatusOr<proto::Program> p = CompileEdited(
      "qdq_conv.onnx", [](onnx::ModelProto& m) { AddMetadata(m, "pim.layer.conv1.adc_step", "0x10"); });
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("model metadata 'pim.layer.conv1.adc_step' = '0x10'"), std::string::npos)
      << p.status();
}

// ---------------------------------------------------------------- lowering (quantizer fusion)

TEST(LowerGraph, QdqWeightsBecomeCodesInOkLayout) {
  absl::StatusOr<proto::Program> p = Compile("qdq_conv.onnx", testing::DefaultTarget());
  ASSERT_TRUE(p.ok()) << p.status();
  const proto::MatrixLayer& conv2 = FindStep(*p, "conv2").matrix();
  const ir::Tensor q = Initializer("qdq_conv.onnx", "conv2_wq");
  ASSERT_EQ(conv2.weight_codes().size(), q.ints.size());
  for (size_t i = 0; i < q.ints.size(); ++i) EXPECT_EQ(static_cast<int8_t>(conv2.weight_codes()[i]), q.ints[i]);
  EXPECT_EQ(conv2.out_channels(), 4u);
  EXPECT_EQ(conv2.reduction(), 36u);
  EXPECT_EQ(conv2.weight_bits(), 4u);  // codes in [-7, 7]
  EXPECT_EQ(conv2.input_bits(), 4u);   // Clip max 1.5 / scale 0.1 = 15 -> 4 bits
  EXPECT_EQ(conv2.weight_scale_size(), 4);
  EXPECT_DOUBLE_EQ(conv2.input_scale(), static_cast<double>(0.1f));
  EXPECT_EQ(conv2.bias_size(), 0);
  EXPECT_EQ(conv2.conv().pad_top(), 1u);
}

TEST(LowerGraph, KnWeightIsTransposed) {
  absl::StatusOr<proto::Program> p = Compile("qdq_mlp.onnx", testing::DefaultTarget());
  ASSERT_TRUE(p.ok()) << p.status();
  const proto::MatrixLayer& fc2 = FindStep(*p, "fc2").matrix();
  const ir::Tensor q = Initializer("qdq_mlp.onnx", "fc2_wq");  // [K=70, N=12]
  ASSERT_EQ(fc2.out_channels(), 12u);
  ASSERT_EQ(fc2.reduction(), 70u);
  for (int o = 0; o < 12; ++o) {
    for (int k = 0; k < 70; ++k) {
      ASSERT_EQ(static_cast<int8_t>(fc2.weight_codes()[o * 70 + k]), q.ints[k * 12 + o]) << o << "," << k;
    }
  }
  EXPECT_EQ(fc2.weight_bits(), 3u);  // codes in [-3, 3]
}

TEST(LowerGraph, QdqValueNamesAreKept) {
  absl::StatusOr<proto::Program> p = Compile("qdq_conv.onnx", testing::DefaultTarget());
  ASSERT_TRUE(p.ok()) << p.status();
  const proto::Step& quant = FindStep(*p, "a1_quant");
  ASSERT_TRUE(quant.has_quantize());
  EXPECT_EQ(quant.outputs(0), "a1_q");
  EXPECT_EQ(quant.quantize().lo(), 0);
  EXPECT_EQ(quant.quantize().hi(), 15);
  EXPECT_EQ(FindStep(*p, "conv2").inputs(0), "a1_q");
  EXPECT_EQ(FindStep(*p, "conv2").outputs(0), "conv2_out");
  // The input quantizer follows Clip(0, 15/15): 4 bits.
  EXPECT_EQ(FindStep(*p, "a0_quant").quantize().hi(), 15);
  for (const proto::Step& s : p->steps()) {
    EXPECT_FALSE(s.has_dequantize()) << s.name() << ": every dequantizer here only feeds a matrix layer";
  }
  EXPECT_TRUE(FindStep(*p, "bn1").has_batch_norm());
  EXPECT_EQ(p->outputs(0), "logits");
}

TEST(LowerGraph, QonnxActivationGetsCodesAndDequantizeWhenHostReadsIt) {
  absl::StatusOr<proto::Program> p = Compile("qonnx_conv.onnx", testing::DefaultTarget());
  ASSERT_TRUE(p.ok()) << p.status();
  const proto::Step& qa0 = FindStep(*p, "qa0");
  ASSERT_TRUE(qa0.has_quantize());
  EXPECT_EQ(qa0.outputs(0), "qa0_out:codes");
  EXPECT_EQ(qa0.quantize().hi(), 15);
  EXPECT_EQ(FindStep(*p, "conv1").inputs(0), "qa0_out:codes");
  // qa1's float output feeds AveragePool, a host op: QuantizeStep + DequantizeStep.
  const proto::Step& qa1 = FindStep(*p, "qa1");
  EXPECT_EQ(qa1.quantize().hi(), 7);  // 3 bits
  const proto::Step& dq1 = FindStep(*p, "qa1:dequantize");
  ASSERT_TRUE(dq1.has_dequantize());
  EXPECT_EQ(dq1.inputs(0), "qa1_out:codes");
  EXPECT_EQ(dq1.outputs(0), "qa1_out");
  EXPECT_EQ(FindStep(*p, "pool1").inputs(0), "qa1_out");
}

TEST(LowerGraph, QonnxWeightCodesFollowTheRoundingRule) {
  absl::StatusOr<proto::Program> p = Compile("qonnx_conv.onnx", testing::DefaultTarget());
  ASSERT_TRUE(p.ok()) << p.status();
  const ir::Tensor w = Initializer("qonnx_conv.onnx", "conv1_w");      // [6,1,3,3]
  const ir::Tensor s = Initializer("qonnx_conv.onnx", "qw1_scale");    // [6,1,1,1]
  const proto::MatrixLayer& conv1 = FindStep(*p, "conv1").matrix();
  ASSERT_EQ(conv1.weight_codes().size(), 54u);
  int nonzero = 0;
  for (int o = 0; o < 6; ++o) {
    EXPECT_DOUBLE_EQ(conv1.weight_scale(o), s.values[o]);
    for (int k = 0; k < 9; ++k) {
      const double expected = std::clamp(std::nearbyint(w.values[o * 9 + k] / s.values[o]), -7.0, 7.0);
      EXPECT_EQ(static_cast<int8_t>(conv1.weight_codes()[o * 9 + k]), expected);
      nonzero += expected != 0;
    }
  }
  EXPECT_GT(nonzero, 10);
  // The [K,N] MatMul weight with a scalar scale, 5 bits.
  const proto::MatrixLayer& fc = FindStep(*p, "fc").matrix();
  EXPECT_EQ(fc.weight_bits(), 5u);
  EXPECT_EQ(fc.weight_scale_size(), 1);
}

TEST(LowerGraph, FloatLayersStayOnTheHost) {
  absl::StatusOr<proto::Program> p = Compile("float_layer.onnx", testing::DefaultTarget());
  ASSERT_TRUE(p.ok()) << p.status();
  const proto::Step& fc = FindStep(*p, "fc");
  ASSERT_TRUE(fc.has_float_matrix());
  const ir::Tensor w = Initializer("float_layer.onnx", "fc_w");
  ASSERT_EQ(fc.float_matrix().weight_size(), 1280);
  EXPECT_EQ(fc.float_matrix().weight(5), w.values[5]);
  EXPECT_EQ(p->load_phases_size(), 1);
}

TEST(LowerGraph, AllZeroQdqWeightsGetTwoBitsAndGoDigital) {
  // An untrained export can round every weight to 0: b_w would be 1 by the formula.
  std::ifstream in(testing::ModelPath("qdq_conv.onnx"), std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(bytes.str()));
  for (auto& t : *m.mutable_graph()->mutable_initializer()) {
    if (t.name() == "conv2_wq") t.set_raw_data(std::string(t.raw_data().size(), '\0'));
  }
  absl::StatusOr<proto::Program> p = CompileModel(m.SerializeAsString(), "zero.onnx", testing::DefaultTarget(), {});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(FindStep(*p, "conv2").matrix().weight_bits(), 2u);
  EXPECT_EQ(FindStep(*p, "conv2").matrix().placement(), proto::DIGITAL);
  EXPECT_EQ(FindStep(*p, "conv2").matrix().placement_reason(), "all weight codes are zero");
}

// ---------------------------------------------------------------- settings and placement

TEST(ResolveLayerSettings, PrecedenceFlagLayerModelTarget) {
  // qdq_mlp: pim.rows = 32 (model), pim.layer.fc1.scheme = bit_serial (layer), target native.
  absl::StatusOr<proto::Program> p = Compile("qdq_mlp.onnx", testing::DefaultTarget());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(FindStep(*p, "fc1").matrix().pim().scheme(), proto::BIT_SERIAL);
  EXPECT_EQ(FindStep(*p, "fc1").matrix().pim().rows(), 32u);
  EXPECT_EQ(FindStep(*p, "fc2").matrix().pim().scheme(), proto::NATIVE);
  EXPECT_EQ(FindStep(*p, "fc2").matrix().pim().adc_bits(), 7u);

  CompileOptions flags;
  flags.scheme = runtime::Scheme::kDifferential;
  flags.rows = 16;
  flags.adc_bits = 5;
  p = Compile("qdq_mlp.onnx", testing::DefaultTarget(), flags);
  ASSERT_TRUE(p.ok()) << p.status();
  for (const char* name : {"fc1", "fc2"}) {
    EXPECT_EQ(FindStep(*p, name).matrix().pim().scheme(), proto::DIFFERENTIAL) << name;
    EXPECT_EQ(FindStep(*p, name).matrix().pim().rows(), 16u) << name;
    EXPECT_EQ(FindStep(*p, name).matrix().pim().adc_bits(), 5u) << name;
  }
}

TEST(ResolveLayerSettings, RowsBeyondTheTargetAreRefused) {
  CompileOptions flags;
  flags.rows = 65;
  absl::StatusOr<proto::Program> p = Compile("qdq_conv.onnx", testing::DefaultTarget(), flags);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("conv1: rows R = 65 (from flag) is outside 1..64"), std::string::npos)
      << p.status();
}

TEST(DecidePlacement, ReasonsForEachDecision) {
  absl::StatusOr<proto::Program> p = Compile("qdq_mlp.onnx", testing::DefaultTarget());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(FindStep(*p, "fc1").matrix().placement(), proto::PIM);
  const proto::MatrixLayer& fc3 = FindStep(*p, "fc3").matrix();
  EXPECT_EQ(fc3.placement(), proto::DIGITAL);
  EXPECT_EQ(fc3.placement_reason(), "input codes need 8 bits, target allows 4 for native");
  EXPECT_FALSE(fc3.has_pim());

  p = Compile("qdq_conv.onnx", testing::DefaultTarget());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(FindStep(*p, "fc").matrix().placement(), proto::DIGITAL);
  EXPECT_EQ(FindStep(*p, "fc").matrix().placement_reason(), "metadata pim.layer.fc.placement = digital");
}

TEST(DecidePlacement, BitSerialAcceptsEightBitInputs) {
  CompileOptions flags;
  flags.scheme = runtime::Scheme::kBitSerial;
  absl::StatusOr<proto::Program> p = Compile("qdq_mlp.onnx", testing::DefaultTarget(), flags);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(FindStep(*p, "fc3").matrix().placement(), proto::PIM);
}

TEST(DecidePlacement, WeightTooWideForTargetIsAnErrorWhenPimIsRequested) {
  runtime::ChipSpec chip = testing::DefaultTarget();
  chip.max_weight_bits = 4;
  absl::StatusOr<proto::Program> p = Compile("wide_weights.onnx", chip);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("conv3: weight codes need 6 bits, target allows 4"), std::string::npos)
      << p.status();
}

TEST(DecidePlacement, RequirePimRefusesADigitalFallback) {
  CompileOptions flags;
  flags.require_pim = true;
  absl::StatusOr<proto::Program> p = Compile("qdq_mlp.onnx", testing::DefaultTarget(), flags);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("fc3: input codes need 8 bits, target allows 4 for native"),
            std::string::npos)
      << p.status();
}

// ---------------------------------------------------------------- ADC step

TEST(ComputeAdcStep, FullRangeRuleHandComputed) {
  // O = 2, K = 5, R = 3: groups k in [0,3) and [3,5).
  //   row 0 = [3,-2,1,-7,4]: g0 pos 4 neg 2; g1 pos 4 neg 7
  //   row 1 = [-1,-1,-1,2,0]: g0 pos 0 neg 3; g1 pos 2 neg 0
  // max = 7; b_a = 2 -> X_top = 3 -> P_max = 21.
  ir::MatrixOp layer;
  layer.out_channels = 2;
  layer.reduction = 5;
  layer.rows = 3;
  layer.input_bits = 2;
  layer.adc_bits = 4;
  layer.weight_codes = {3, -2, 1, -7, 4, -1, -1, -1, 2, 0};
  layer.scheme = runtime::Scheme::kNative;
  EXPECT_DOUBLE_EQ(FullRangeAdcStep(layer), 21.0 / 7.0);  // code_max = 2^3 - 1
  layer.scheme = runtime::Scheme::kDifferential;
  EXPECT_DOUBLE_EQ(FullRangeAdcStep(layer), 21.0 / 15.0);  // code_max = 2^4 - 1
  layer.scheme = runtime::Scheme::kBitSerial;
  EXPECT_DOUBLE_EQ(FullRangeAdcStep(layer), 7.0 / 7.0);  // X_top = 1
  layer.rows = 5;  // one group: row 0 pos 8 neg 9 -> 9
  layer.scheme = runtime::Scheme::kNative;
  EXPECT_DOUBLE_EQ(FullRangeAdcStep(layer), 27.0 / 7.0);
  layer.weight_codes.assign(10, 0);
  EXPECT_DOUBLE_EQ(FullRangeAdcStep(layer), 1.0);
}

TEST(ComputeAdcStep, RulesTrainedFullRangeOverride) {
  absl::StatusOr<proto::Program> p = Compile("qdq_conv.onnx", testing::DefaultTarget());
  ASSERT_TRUE(p.ok()) << p.status();
  const proto::PimMapping& conv2 = FindStep(*p, "conv2").matrix().pim();
  EXPECT_EQ(conv2.adc_step_rule(), proto::TRAINED);
  EXPECT_EQ(conv2.adc_step(), 2.5);
  const proto::MatrixLayer& conv1 = FindStep(*p, "conv1").matrix();
  EXPECT_EQ(conv1.pim().adc_step_rule(), proto::FULL_RANGE);
  // conv1: K = 9 fits one group; P_max = max row sum of positive or negative codes * 15.
  int p_max = 0;
  for (int o = 0; o < 4; ++o) {
    int pos = 0, neg = 0;
    for (int k = 0; k < 9; ++k) {
      const int q = static_cast<int8_t>(conv1.weight_codes()[o * 9 + k]);
      (q > 0 ? pos : neg) += std::abs(q);
    }
    p_max = std::max({p_max, pos, neg});
  }
  EXPECT_DOUBLE_EQ(conv1.pim().adc_step(), p_max * 15.0 / 63.0);

  CompileOptions flags;
  flags.adc_step = 0.75;
  p = Compile("qdq_conv.onnx", testing::DefaultTarget(), flags);
  ASSERT_TRUE(p.ok()) << p.status();
  for (const char* name : {"conv1", "conv2", "conv3"}) {
    EXPECT_EQ(FindStep(*p, name).matrix().pim().adc_step(), 0.75) << name;
    EXPECT_EQ(FindStep(*p, name).matrix().pim().adc_step_rule(), proto::OVERRIDE) << name;
  }
}

// ---------------------------------------------------------------- tiling and assignment

TEST(TileLayers, ColumnsPerOutput) {
  EXPECT_EQ(ColumnsPerOutput(runtime::Scheme::kNative, 4, 1), 4);
  EXPECT_EQ(ColumnsPerOutput(runtime::Scheme::kBitSerial, 5, 2), 3);
  EXPECT_EQ(ColumnsPerOutput(runtime::Scheme::kDifferential, 4, 1), 6);
  EXPECT_EQ(ColumnsPerOutput(runtime::Scheme::kDifferential, 5, 2), 4);
}

TEST(TileLayers, KNotAMultipleOfRAndRSmallerThanChipRows) {
  // fc1: K = 100, R = 32 (< 64 chip rows), O = 70, 4-bit weights bit_serial -> 4 columns per
  // output -> 32 outputs per 128-column tile: groups [0,32) [32,64) [64,96) [96,100) x output
  // blocks [0,32) [32,64) [64,70).
  absl::StatusOr<proto::Program> p = Compile("qdq_mlp.onnx", testing::DefaultTarget());
  ASSERT_TRUE(p.ok()) << p.status();
  const proto::PimMapping& pim = FindStep(*p, "fc1").matrix().pim();
  ASSERT_EQ(pim.tiles_size(), 12);
  std::set<std::tuple<int, int, int, int>> got;
  for (const proto::Tile& t : pim.tiles()) {
    got.insert({t.k_begin(), t.k_end(), t.out_begin(), t.out_end()});
    EXPECT_EQ(t.columns(), (t.out_end() - t.out_begin()) * 4u);
    EXPECT_EQ(t.row_group(), t.k_begin() / 32);
  }
  std::set<std::tuple<int, int, int, int>> want;
  for (auto [kb, ke] : {std::pair{0, 32}, {32, 64}, {64, 96}, {96, 100}}) {
    for (auto [ob, oe] : {std::pair{0, 32}, {32, 64}, {64, 70}}) want.insert({kb, ke, ob, oe});
  }
  EXPECT_EQ(got, want);
}

// Checks that no two tiles of one phase overlap in a (macro, bank) and that all fit.
void ExpectDisjoint(const proto::Program& p) {
  std::map<std::tuple<uint32_t, uint32_t, uint32_t>, std::vector<std::pair<uint32_t, uint32_t>>> used;
  for (const proto::Step& s : p.steps()) {
    if (!s.has_matrix()) continue;
    for (const proto::Tile& t : s.matrix().pim().tiles()) {
      EXPECT_LT(t.macro(), p.target().macros());
      EXPECT_LT(t.bank(), p.target().banks_per_macro());
      EXPECT_LE(t.column_offset() + t.columns(), p.target().columns());
      EXPECT_LE(t.row_offset() + t.k_end() - t.k_begin(), p.target().rows());
      auto& list = used[{t.load_phase(), t.macro(), t.bank()}];
      for (auto [b, e] : list) {
        EXPECT_TRUE(t.column_offset() >= e || t.column_offset() + t.columns() <= b) << "tile " << t.id() << " overlaps";
      }
      list.push_back({t.column_offset(), t.column_offset() + t.columns()});
    }
  }
}

TEST(AssignTiles, FitsInOnePhaseOnTheDefaultChip) {
  absl::StatusOr<proto::Program> p = Compile("qdq_mlp.onnx", testing::DefaultTarget());
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->load_phases_size(), 1);
  EXPECT_EQ(p->load_phases(0).layers_size(), 2);
  ExpectDisjoint(*p);
  // fc1's 12 tiles spread over all 8 macros before a second bank is used.
  std::set<uint32_t> macros;
  for (const proto::Tile& t : FindStep(*p, "fc1").matrix().pim().tiles()) macros.insert(t.macro());
  EXPECT_EQ(macros.size(), 8u);
}

TEST(AssignTiles, ReloadPlanOnASmallTarget) {
  // 2 macros x 1 bank of 16 rows x 32 columns: conv1 (K=9, O=4: 16 columns) and conv2/conv3
  // (K=36: 3 row groups each) cannot all be resident.
  const runtime::ChipSpec chip = SmallTarget(2, 1, 16, 32);
  absl::StatusOr<proto::Program> p = Compile("qdq_conv.onnx", chip);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_GT(p->load_phases_size(), 1);
  ExpectDisjoint(*p);
  uint64_t cells = 0;
  for (const proto::LoadPhase& lp : p->load_phases()) {
    EXPECT_LE(lp.weight_cells(), 2u * 16 * 32);
    cells += lp.weight_cells();
  }
  uint64_t tile_cells = 0;
  for (const char* name : {"conv1", "conv2", "conv3"}) {
    const proto::PimMapping& pim = FindStep(*p, name).matrix().pim();
    for (const proto::Tile& t : pim.tiles()) {
      tile_cells += (t.k_end() - t.k_begin()) * t.columns();
      const proto::LoadPhase& lp = p->load_phases(t.load_phase());
      EXPECT_NE(std::find(lp.layers().begin(), lp.layers().end(), name), lp.layers().end());
    }
  }
  EXPECT_EQ(cells, tile_cells);
  // Phases are used in execution order.
  uint32_t last = 0;
  for (const char* name : {"conv1", "conv2", "conv3"}) {
    for (const proto::Tile& t : FindStep(*p, name).matrix().pim().tiles()) {
      EXPECT_GE(t.load_phase(), last);
      last = t.load_phase();
    }
  }
}

TEST(AssignTiles, LayerLargerThanTheChipIsSplitOverPhases) {
  // One macro, one bank, 16 x 32: fc1 (K=100 -> 7 groups of 16, 70 outputs at 8 per tile) has
  // 63 tiles, one per phase.
  CompileOptions flags;
  flags.rows = 16;
  const runtime::ChipSpec chip = SmallTarget(1, 1, 16, 32);
  absl::StatusOr<proto::Program> p = Compile("qdq_mlp.onnx", chip, flags);
  ASSERT_TRUE(p.ok()) << p.status();
  const proto::PimMapping& fc1 = FindStep(*p, "fc1").matrix().pim();
  EXPECT_EQ(fc1.tiles_size(), 7 * 9);
  std::set<uint32_t> phases;
  for (const proto::Tile& t : fc1.tiles()) phases.insert(t.load_phase());
  EXPECT_EQ(phases.size(), 63u);
  ExpectDisjoint(*p);
}

// ---------------------------------------------------------------- cost

TEST(PredictCost, CountsMacsAndConversions) {
  absl::StatusOr<proto::Program> p = Compile("qdq_conv.onnx", testing::DefaultTarget());
  ASSERT_TRUE(p.ok()) << p.status();
  const proto::MatrixLayer& conv1 = FindStep(*p, "conv1").matrix();
  EXPECT_EQ(conv1.predicted().macs(), 4u * 9 * 64);        // O * K * 8x8 positions
  EXPECT_EQ(conv1.predicted().conversions(), 4u * 64);     // native: one per output
  EXPECT_GT(conv1.predicted().cycles(), 0u);
  EXPECT_GT(conv1.predicted().energy_pj(), 0.0);
  uint64_t macs = 0;
  for (const proto::Step& s : p->steps()) {
    if (s.has_matrix()) macs += s.matrix().predicted().macs();
  }
  EXPECT_EQ(p->predicted().macs(), macs);
}

}  // namespace
}  // namespace pim::compiler
