#include "pim/runtime/program_file.h"

#include <cstdio>
#include <fstream>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/test_programs.h"

namespace pim::runtime {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

TEST(ProgramFile, SmallCnnIsValid) {
  proto::Program p = testing::SmallCnn();
  ASSERT_TRUE(p.target().macros() > 0) << "default chip file not found";
  EXPECT_TRUE(ValidateProgram(p, "t").ok()) << ValidateProgram(p, "t");
  absl::StatusOr<ValueShapes> shapes = InferValueShapes(p);
  ASSERT_TRUE(shapes.ok());
  EXPECT_EQ(shapes->at("conv1_y"), (std::vector<int64_t>{-1, 4, 6, 6}));
  EXPECT_EQ(shapes->at("pool1_y"), (std::vector<int64_t>{-1, 4, 3, 3}));
  EXPECT_EQ(shapes->at("logits"), (std::vector<int64_t>{-1, 3}));
}

TEST(ProgramFile, RoundTripsThroughBytes) {
  proto::Program p = testing::SmallCnn(proto::BIT_SERIAL);
  absl::StatusOr<proto::Program> back = ParseProgram(p.SerializeAsString(), "mem.pimb");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->SerializeAsString(), p.SerializeAsString());
}

TEST(ProgramFile, RefusesOtherVersion) {
  proto::Program p = testing::SmallCnn();
  p.set_format_version(7);
  absl::Status s = ValidateProgram(p, "m.pimb");
  EXPECT_THAT(Message(s), HasSubstr("m.pimb: format_version is 7, this runtime reads version 1"));
}

TEST(ProgramFile, RefusesWrongWeightCodeCount) {
  proto::Program p = testing::SmallCnn();
  p.mutable_steps(1)->mutable_matrix()->mutable_weight_codes()->pop_back();
  EXPECT_THAT(Message(ValidateProgram(p, "m")),
              HasSubstr("step 'conv1' (#1): weight_codes holds 35 codes, O*K = 4*9 = 36"));
}

TEST(ProgramFile, RefusesCodeOutsideWeightBits) {
  proto::Program p = testing::SmallCnn();
  (*p.mutable_steps(1)->mutable_matrix()->mutable_weight_codes())[5] = char(8);
  EXPECT_THAT(Message(ValidateProgram(p, "m")), HasSubstr("weight code [0, 5] is 8, outside +-7"));
}

TEST(ProgramFile, RefusesScaleAndBiasSizes) {
  proto::Program p = testing::SmallCnn();
  p.mutable_steps(1)->mutable_matrix()->add_weight_scale(1.0);
  EXPECT_THAT(Message(ValidateProgram(p, "m")), HasSubstr("weight_scale has 5 entries, must be O = 4 or 1"));
  p = testing::SmallCnn();
  p.mutable_steps(1)->mutable_matrix()->mutable_bias()->RemoveLast();
  EXPECT_THAT(Message(ValidateProgram(p, "m")), HasSubstr("bias has 3 entries, must be O = 4 or 0"));
}

TEST(ProgramFile, RefusesUseBeforeDefinition) {
  proto::Program p = testing::SmallCnn();
  p.mutable_steps(3)->set_inputs(0, "later");
  EXPECT_THAT(Message(ValidateProgram(p, "m")), HasSubstr("step 'relu1' (#3): input 'later' is not defined before this step"));
}

TEST(ProgramFile, RefusesRedefinition) {
  proto::Program p = testing::SmallCnn();
  p.mutable_steps(3)->set_outputs(0, "x_q");
  EXPECT_THAT(Message(ValidateProgram(p, "m")), HasSubstr("output 'x_q' is defined twice"));
}

TEST(ProgramFile, RefusesShapeMismatch) {
  proto::Program p = testing::SmallCnn();
  p.mutable_steps(6)->mutable_reshape()->set_shape(1, 35);
  EXPECT_THAT(Message(ValidateProgram(p, "m")), HasSubstr("reshape from [N, 4, 3, 3] to [N, 35] changes the element count"));
  p = testing::SmallCnn();
  p.mutable_inputs(0)->set_shape(1, 2);
  EXPECT_THAT(Message(ValidateProgram(p, "m")), HasSubstr("conv input has 2 channels, layer expects 1"));
}

TEST(ProgramFile, RefusesUnknownEnum) {
  proto::Program p = testing::SmallCnn();
  p.mutable_steps(1)->mutable_matrix()->mutable_pim()->set_scheme(static_cast<proto::Scheme>(9));
  EXPECT_THAT(Message(ValidateProgram(p, "m")), HasSubstr("pim.scheme is 9"));
  p = testing::SmallCnn();
  p.mutable_steps(4)->mutable_pool()->set_kind(static_cast<proto::PoolStep::Kind>(0));
  EXPECT_THAT(Message(ValidateProgram(p, "m")), HasSubstr("pool kind is 0"));
}

TEST(ProgramFile, RefusesTileOutsideChip) {
  proto::Program p = testing::SmallCnn();
  p.mutable_steps(1)->mutable_matrix()->mutable_pim()->mutable_tiles(0)->set_macro(8);
  EXPECT_THAT(Message(ValidateProgram(p, "m")), HasSubstr("tile 1: macro 8, bank 0 outside chip"));
  p = testing::SmallCnn();
  p.mutable_steps(1)->mutable_matrix()->mutable_pim()->mutable_tiles(0)->set_column_offset(120);
  EXPECT_THAT(Message(ValidateProgram(p, "m")), HasSubstr("outside the 64 x 128 macro"));
}

TEST(ProgramFile, RefusesTileOutsideLayerOrRowGroup) {
  proto::Program p = testing::SmallCnn();
  p.mutable_steps(1)->mutable_matrix()->mutable_pim()->mutable_tiles(0)->set_k_end(5);
  EXPECT_THAT(Message(ValidateProgram(p, "m")), HasSubstr("are not inside row group 0 (R = 4)"));
}

TEST(ProgramFile, RefusesUncoveredAndDoubleCoveredWeights) {
  proto::Program p = testing::SmallCnn();
  p.mutable_steps(1)->mutable_matrix()->mutable_pim()->mutable_tiles()->RemoveLast();
  EXPECT_THAT(Message(ValidateProgram(p, "m")), HasSubstr("is in no tile"));
  p = testing::SmallCnn();
  proto::PimMapping* pim = p.mutable_steps(1)->mutable_matrix()->mutable_pim();
  proto::Tile copy = pim->tiles(0);
  copy.set_id(99);
  copy.set_column_offset(100);
  *pim->add_tiles() = copy;
  EXPECT_THAT(Message(ValidateProgram(p, "m")), HasSubstr("tile 99: weight [0, 0] is already held by another tile"));
}

TEST(ProgramFile, RefusesOverlappingTilesInOnePhase) {
  proto::Program p = testing::SmallCnn();
  proto::PimMapping* pim = p.mutable_steps(1)->mutable_matrix()->mutable_pim();
  pim->mutable_tiles(1)->set_column_offset(pim->tiles(0).column_offset() + 2);
  EXPECT_THAT(Message(ValidateProgram(p, "m")), HasSubstr("overlap in load phase 0 on macro 0 bank 0"));
}

TEST(ProgramFile, RefusesPhaseNotListingLayer) {
  proto::Program p = testing::SmallCnn();
  p.mutable_load_phases(0)->clear_layers();
  EXPECT_THAT(Message(ValidateProgram(p, "m")), HasSubstr("layer 'conv1' has tiles in load phase 0 that does not list it"));
}

proto::Program WithBnRecord() {
  proto::Program p = testing::SmallCnn();
  proto::BnCalibrationRecord* r = p.mutable_bn_calibration();
  r->set_device("sim:profile=typical,seed=1");
  r->set_samples(8);
  r->add_layers("bn1");
  r->mutable_adc_calibration()->set_path("typ.cal.pb");
  r->mutable_adc_calibration()->set_sha256(std::string(64, 'a'));
  return p;
}

TEST(ProgramFile, AcceptsABnCalibrationRecordThroughAnAdcCalibration) {
  proto::Program p = WithBnRecord();
  EXPECT_TRUE(ValidateProgram(p, "m").ok()) << ValidateProgram(p, "m");
  absl::StatusOr<proto::Program> back = ParseProgram(p.SerializeAsString(), "m");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->bn_calibration().adc_calibration().path(), "typ.cal.pb");
  EXPECT_EQ(back->bn_calibration().adc_calibration().sha256(), std::string(64, 'a'));
}

TEST(ProgramFile, RefusesABnCalibrationRecordOfAStepThatIsNoBatchNorm) {
  proto::Program p = WithBnRecord();
  p.mutable_bn_calibration()->add_layers("relu1");
  EXPECT_THAT(Message(ValidateProgram(p, "m")), HasSubstr("m: bn_calibration: layers[1] 'relu1' is not a batch_norm step"));
  p = WithBnRecord();
  p.mutable_bn_calibration()->add_layers("bn1");
  EXPECT_THAT(Message(ValidateProgram(p, "m")), HasSubstr("layers[1] 'bn1' is listed twice"));
}

TEST(ProgramFile, RefusesAnAdcCalibrationReferenceWithoutAHash) {
  proto::Program p = WithBnRecord();
  p.mutable_bn_calibration()->mutable_adc_calibration()->set_sha256("abc");
  EXPECT_THAT(Message(ValidateProgram(p, "m")),
              HasSubstr("bn_calibration: adc_calibration.sha256 'abc' is not a SHA-256 (64 lowercase hex digits)"));
  p.mutable_bn_calibration()->mutable_adc_calibration()->set_sha256(std::string(64, 'A'));
  EXPECT_THAT(Message(ValidateProgram(p, "m")), HasSubstr("is not a SHA-256"));
  p.mutable_bn_calibration()->mutable_adc_calibration()->set_sha256(std::string(64, '0'));
  p.mutable_bn_calibration()->mutable_adc_calibration()->clear_path();
  EXPECT_THAT(Message(ValidateProgram(p, "m")), HasSubstr("bn_calibration: adc_calibration.path is empty"));
}

TEST(ProgramFile, MissingFileIsNotFound) {
  absl::StatusOr<proto::Program> p = ReadProgramFile("/nonexistent/x.pimb");
  EXPECT_EQ(p.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(p.status()), HasSubstr("/nonexistent/x.pimb: cannot open"));
}

TEST(ProgramFile, GarbageIsRefused) {
  absl::StatusOr<proto::Program> p = ParseProgram("this is not a protobuf at all \xff\xff\xff", "junk.pimb");
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(Message(p.status()), StartsWith("junk.pimb: "));
}

// Random corruptions of a valid file: each either still validates (and then its values are
// consistent enough to infer shapes) or is refused with a message naming the file.
TEST(ProgramFile, SurvivesRandomCorruption) {
  for (proto::Scheme scheme : {proto::NATIVE, proto::DIFFERENTIAL, proto::BIT_SERIAL}) {
    const std::string good = testing::SmallCnn(scheme).SerializeAsString();
    std::mt19937 rng(1234 + int(scheme));
    int refused = 0;
    for (int trial = 0; trial < 3000; ++trial) {
      std::string bytes = good;
      const int edits = 1 + int(rng() % 4);
      for (int e = 0; e < edits; ++e) {
        switch (rng() % 4) {
          case 0: bytes[rng() % bytes.size()] = char(rng()); break;
          case 1: bytes[rng() % bytes.size()] ^= char(1 << (rng() % 8)); break;
          case 2: bytes.resize(rng() % bytes.size()); break;
          case 3: bytes.insert(rng() % (bytes.size() + 1), 1, char(rng())); break;
        }
        if (bytes.empty()) break;
      }
      absl::StatusOr<proto::Program> p = ParseProgram(bytes, "fuzz.pimb");
      if (p.ok()) {
        EXPECT_TRUE(InferValueShapes(*p).ok());
      } else {
        ++refused;
        EXPECT_THAT(Message(p.status()), StartsWith("fuzz.pimb: "));
      }
    }
    EXPECT_GT(refused, 1000);
  }
}

}  // namespace
}  // namespace pim::runtime
