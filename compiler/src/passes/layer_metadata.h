#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "ir/module.h"

namespace pim::compiler {

// Reading the pim.* metadata keys of docs/onnx-convention.md section 5. Values are validated here
// so that every pass reports a bad value the same way: "model metadata 'key' = 'value': why".

// Key of a per-layer setting: "pim.layer.<node>.<field>".
std::string LayerKey(const std::string& node, const std::string& field);

// The metadata value of `key`, if present.
std::optional<std::string> Lookup(const ir::Module& module, const std::string& key);

absl::StatusOr<std::optional<int>> LookupInt(const ir::Module& module, const std::string& key);
absl::StatusOr<std::optional<double>> LookupPositiveDouble(const ir::Module& module, const std::string& key);
absl::StatusOr<std::optional<runtime::Scheme>> LookupScheme(const ir::Module& module, const std::string& key);

// "native" | "differential" | "bit_serial" -> Scheme.
absl::StatusOr<runtime::Scheme> ParseScheme(const std::string& name);

// Every pim.layer.<node>.<field> key must name a Conv/Gemm/MatMul node of the model and a known
// field; a typo would otherwise be ignored silently.
absl::Status CheckLayerKeys(const ir::Module& module);

}  // namespace pim::compiler
