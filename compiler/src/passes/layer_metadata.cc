#include "passes/layer_metadata.h"

#include <cmath>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace pim::compiler {
namespace {

absl::Status BadValue(const std::string& key, const std::string& value, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat("model metadata '", key, "' = '", value, "': ", why));
}

constexpr const char* kLayerFields[] = {"scheme", "adc_bits", "rows", "adc_step", "placement"};

}  // namespace

std::string LayerKey(const std::string& node, const std::string& field) {
  return absl::StrCat("pim.layer.", node, ".", field);
}

std::optional<std::string> Lookup(const ir::Module& module, const std::string& key) {
  auto it = module.metadata.find(key);
  if (it == module.metadata.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<std::optional<int>> LookupInt(const ir::Module& module, const std::string& key) {
  std::optional<std::string> v = Lookup(module, key);
  if (!v) return std::optional<int>();
  int out = 0;
  if (!absl::SimpleAtoi(*v, &out)) return BadValue(key, *v, "not an integer");
  return std::optional<int>(out);
}

absl::StatusOr<std::optional<double>> LookupPositiveDouble(const ir::Module& module, const std::string& key) {
  std::optional<std::string> v = Lookup(module, key);
  if (!v) return std::optional<double>();
  double out = 0;
  // Decimal only (strtod would also take hexadecimal "0x10").
  if (v->find_first_not_of("0123456789.eE+-") != std::string::npos || !absl::SimpleAtod(*v, &out) ||
      !std::isfinite(out) || out <= 0) {
    return BadValue(key, *v, "not a positive finite number");
  }
  return std::optional<double>(out);
}

absl::StatusOr<runtime::Scheme> ParseScheme(const std::string& name) {
  if (name == "native") return runtime::Scheme::kNative;
  if (name == "differential") return runtime::Scheme::kDifferential;
  if (name == "bit_serial") return runtime::Scheme::kBitSerial;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown scheme '", name, "' (native, differential or bit_serial)"));
}

absl::StatusOr<std::optional<runtime::Scheme>> LookupScheme(const ir::Module& module, const std::string& key) {
  std::optional<std::string> v = Lookup(module, key);
  if (!v) return std::optional<runtime::Scheme>();
  absl::StatusOr<runtime::Scheme> s = ParseScheme(*v);
  if (!s.ok()) return BadValue(key, *v, "not native, differential or bit_serial");
  return std::optional<runtime::Scheme>(*s);
}

absl::Status CheckLayerKeys(const ir::Module& module) {
  std::set<std::string> layers;
  for (const ir::Step& step : module.steps) {
    if (std::holds_alternative<ir::MatrixOp>(step.op) || std::holds_alternative<ir::FloatMatrixOp>(step.op)) {
      layers.insert(step.name);
    }
  }
  for (const auto& [key, value] : module.metadata) {
    if (!absl::StartsWith(key, "pim.layer.")) continue;
    bool known = false;
    for (const char* field : kLayerFields) {
      const std::string suffix = absl::StrCat(".", field);
      if (!absl::EndsWith(key, suffix)) continue;
      const std::string node = key.substr(10, key.size() - 10 - suffix.size());
      if (!layers.count(node)) {
        return BadValue(key, value, absl::StrCat("the model has no Conv/Gemm/MatMul node named '", node, "'"));
      }
      known = true;
      break;
    }
    if (!known) {
      return BadValue(key, value, "unknown per-layer setting (scheme, adc_bits, rows, adc_step or placement)");
    }
  }
  return absl::OkStatus();
}

}  // namespace pim::compiler
