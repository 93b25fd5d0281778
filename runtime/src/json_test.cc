#include "pim/runtime/json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace pim::runtime {
namespace {

TEST(Json, StringEscapesQuotesBackslashAndControlCharacters) {
  EXPECT_EQ(JsonString("a\"b\\c\nd\x01"), "\"a\\\"b\\\\c\\u000ad\\u0001\"");
}

TEST(Json, NumberKeepsEveryDigitAndWritesNullForNonFinite) {
  EXPECT_EQ(JsonNumber(0.1), "0.10000000000000001");
  EXPECT_EQ(JsonNumber(std::numeric_limits<double>::infinity()), "null");
  EXPECT_EQ(JsonNumber(std::nan("")), "null");
}

TEST(Json, BnCalibrationRecordNamesTheAdcCalibrationOrNull) {
  proto::BnCalibrationRecord r;
  r.set_device("sim");
  r.set_data("train.gz");
  r.set_samples(512);
  r.add_layers("bn1");
  EXPECT_EQ(BnCalibrationRecordJson(r),
            "{\"device\":\"sim\",\"device_serial\":\"\",\"data\":\"train.gz\",\"samples\":512,\"layers\":[\"bn1\"],"
            "\"adc_calibration\":null}");
  r.mutable_adc_calibration()->set_path("chip.cal.pb");
  r.mutable_adc_calibration()->set_sha256("ab");
  EXPECT_EQ(BnCalibrationRecordJson(r),
            "{\"device\":\"sim\",\"device_serial\":\"\",\"data\":\"train.gz\",\"samples\":512,\"layers\":[\"bn1\"],"
            "\"adc_calibration\":{\"path\":\"chip.cal.pb\",\"sha256\":\"ab\",\"device_serial\":\"\"}}");
}

}  // namespace
}  // namespace pim::runtime
