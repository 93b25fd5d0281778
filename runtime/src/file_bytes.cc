#include "file_bytes.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace pim::runtime {

absl::StatusOr<std::string> ReadFileBytes(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open ", what));
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  return buffer.str();
}

}  // namespace pim::runtime
