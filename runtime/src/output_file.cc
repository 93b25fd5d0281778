#include "pim/runtime/output_file.h"

#include <unistd.h>

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace pim::runtime {

absl::Status CheckOutputFile(const std::string& option, const std::string& path) {
  namespace fs = std::filesystem;
  if (path.empty()) return absl::InvalidArgumentError(absl::StrCat(option, ": the path is empty"));
  const std::string what = absl::StrCat(option, " ", path, ": ");
  std::error_code ec;
  if (fs::is_directory(path, ec)) return absl::InvalidArgumentError(what + "is a directory");
  const fs::path parent = fs::path(path).parent_path();
  const std::string dir = parent.empty() ? "." : parent.string();
  if (!fs::exists(dir, ec)) return absl::NotFoundError(absl::StrCat(what, "directory '", dir, "' does not exist"));
  if (!fs::is_directory(dir, ec)) return absl::InvalidArgumentError(absl::StrCat(what, "'", dir, "' is not a directory"));
  if (::access(dir.c_str(), W_OK) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(what, "directory '", dir, "' is not writable"));
  }
  if (fs::exists(path, ec) && ::access(path.c_str(), W_OK) != 0) {
    return absl::PermissionDeniedError(what + "the file exists and is not writable");
  }
  return absl::OkStatus();
}

}  // namespace pim::runtime
