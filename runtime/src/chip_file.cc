#include "pim/runtime/chip_file.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "pim/runtime/file_bytes.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "pim/runtime/chip_spec.h"

#ifndef PIM_SOURCE_CHIPS_DIR
#define PIM_SOURCE_CHIPS_DIR "sim/chips"
#endif

namespace pim::runtime {
namespace {

// Collects the first text-format parse error with its line and column.
class FirstErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (error_.empty()) error_ = absl::StrCat("line ", line + 1, ", column ", column + 1, ": ", message);
  }
  const std::string& error() const { return error_; }

 private:
  std::string error_;
};

}  // namespace

absl::StatusOr<proto::ChipFile> ParseChipFile(const std::string& text, const std::string& origin) {
  proto::ChipFile file;
  google::protobuf::TextFormat::Parser parser;
  FirstErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &file)) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": not a valid chip file: ", errors.error()));
  }
  if (!file.has_spec()) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": chip file has no 'spec'"));
  }
  absl::StatusOr<ChipSpec> spec = ChipSpecFromProto(file.spec());
  if (!spec.ok()) return absl::InvalidArgumentError(absl::StrCat(origin, ": ", spec.status().message()));
  return file;
}

absl::StatusOr<proto::ChipFile> ReadChipFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileBytes(path, "chip file");
  if (!text.ok()) return text.status();
  return ParseChipFile(*text, path);
}

std::string ChipsDirectory() {
  if (const char* dir = std::getenv("PIM_CHIPS_DIR"); dir != nullptr && *dir != '\0') return dir;
  return PIM_SOURCE_CHIPS_DIR;
}

std::string DefaultChipFilePath() { return ChipsDirectory() + "/default.textproto"; }

}  // namespace pim::runtime
