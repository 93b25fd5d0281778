#include "pim/sim/profile.h"

#include <gtest/gtest.h>

#include "google/protobuf/text_format.h"
#include "pim/proto/chip.pb.h"
#include "pim/runtime/chip_file.h"

namespace pim::sim {
namespace {

runtime::ChipSpec DefaultSpec() {
  absl::StatusOr<proto::ChipFile> file = runtime::ReadChipFile(runtime::DefaultChipFilePath());
  EXPECT_TRUE(file.ok()) << file.status();
  return *runtime::ChipSpecFromProto(file->spec());
}

absl::Status Check(const std::string& text) {
  proto::NonIdealityProfile p;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &p)) << text;
  return ProfileFromProto(p, DefaultSpec(), "p.textproto").status();
}

TEST(Profile, BundledProfilesLoadWithTheDefaultSpec) {
  const absl::StatusOr<proto::ChipFile> def = runtime::ReadChipFile(runtime::DefaultChipFilePath());
  ASSERT_TRUE(def.ok());
  for (const char* name : {"ideal", "typical", "harsh"}) {
    const std::string path = ResolveProfilePath(name);
    EXPECT_EQ(path, runtime::ChipsDirectory() + "/" + name + ".textproto");
    absl::StatusOr<proto::ChipFile> file = runtime::ReadChipFile(path);
    ASSERT_TRUE(file.ok()) << file.status();
    EXPECT_EQ(file->spec().SerializeAsString(), def->spec().SerializeAsString()) << name;
    absl::StatusOr<NonIdealityParams> p = ProfileFromProto(file->profile(), DefaultSpec(), path);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(p->name, name);
    EXPECT_EQ(AdcModel(*p).ideal(), std::string(name) == "ideal");
  }
}

TEST(Profile, RejectsOutOfRangeParametersNamingTheField) {
  EXPECT_EQ(Check("gain_sigma: 0.7").message(), "p.textproto: profile field 'gain_sigma' is 0.7, must be in [0, 0.5]");
  EXPECT_EQ(Check("dnl_sigma_lsb: -0.1").message(),
            "p.textproto: profile field 'dnl_sigma_lsb' is -0.1, must be in [0, 4]");
  EXPECT_EQ(Check("noise_sigma_lsb: nan").message(),
            "p.textproto: profile field 'noise_sigma_lsb' is nan, must be in [0, 16]");
}

TEST(Profile, RejectsBadColumnTables) {
  EXPECT_TRUE(Check("columns { macro: 1 column: 5 thresholds: [0.5, 1.4, 2.6] }").ok());
  EXPECT_EQ(Check("columns { macro: 8 column: 5 thresholds: [0.5, 1.5, 2.5] }").message(),
            "p.textproto: profile field 'columns[0].macro' is 8, must be in [0, 7]");
  EXPECT_EQ(Check("columns { column: 128 thresholds: [0.5] }").message(),
            "p.textproto: profile field 'columns[0].column' is 128, must be in [0, 127]");
  EXPECT_EQ(Check("columns { thresholds: [0.5, 1.5] }").message(),
            "p.textproto: profile field 'columns[0].thresholds' has 2 values, must be 2^b - 1 for b in 1..7");
  EXPECT_EQ(Check("columns { thresholds: [0.5, 1.5, 1.0] }").message(),
            "p.textproto: profile field 'columns[0].thresholds[2]' is 1, below the previous threshold 1.5 "
            "(thresholds must be nondecreasing)");
  EXPECT_EQ(Check("columns { thresholds: [0.5] } columns { thresholds: [0.5] }").message(),
            "p.textproto: profile field 'columns[1].column' repeats macro 0 column 0");
  EXPECT_EQ(Check("columns { adc_bits: 3 thresholds: [0.5] }").message(),
            "p.textproto: profile field 'columns[0].adc_bits' is 3 but thresholds has 1 values");
  EXPECT_EQ(Check("columns { thresholds: [0.5] noise_sigma_lsb: 20 }").message(),
            "p.textproto: profile field 'columns[0].noise_sigma_lsb' is 20, must be in [0, 16]");
}

TEST(Profile, UnknownNameStaysAPath) { EXPECT_EQ(ResolveProfilePath("no-such-profile"), "no-such-profile"); }

}  // namespace
}  // namespace pim::sim
