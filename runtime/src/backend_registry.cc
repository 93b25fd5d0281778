#include "pim/runtime/backend_registry.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace pim::runtime {

absl::Status BackendRegistry::Register(const std::string& scheme, BackendFactory factory, DeviceLister lister) {
  if (scheme.empty() || !factory) return absl::InvalidArgumentError("backend registry: empty scheme or factory");
  if (!entries_.emplace(scheme, Entry{std::move(factory), std::move(lister)}).second) {
    return absl::AlreadyExistsError(absl::StrCat("backend registry: scheme '", scheme, "' registered twice"));
  }
  return absl::OkStatus();
}

std::vector<std::string> BackendRegistry::Schemes() const {
  std::vector<std::string> out;
  for (const auto& [scheme, entry] : entries_) out.push_back(scheme);
  return out;
}

absl::StatusOr<std::unique_ptr<Backend>> BackendRegistry::Open(const std::string& text,
                                                               const OpenOptions& options) const {
  absl::StatusOr<DeviceUri> uri = ParseDeviceUri(text);
  if (!uri.ok()) return uri.status();
  auto it = entries_.find(uri->scheme);
  if (it == entries_.end()) {
    return absl::UnimplementedError(absl::StrCat("device '", text, "': this build has no '", uri->scheme,
                                                 "' backend (available: ", absl::StrJoin(Schemes(), ", "), ")"));
  }
  return it->second.factory(*uri, options);
}

std::vector<std::string> BackendRegistry::ListDevices() const {
  std::vector<std::string> out;
  for (const auto& [scheme, entry] : entries_) {
    if (!entry.lister) continue;
    absl::StatusOr<std::vector<std::string>> devices = entry.lister();
    if (!devices.ok()) {
      out.push_back(absl::StrCat(scheme, ": ", devices.status().message()));
      continue;
    }
    out.insert(out.end(), devices->begin(), devices->end());
  }
  return out;
}

}  // namespace pim::runtime
