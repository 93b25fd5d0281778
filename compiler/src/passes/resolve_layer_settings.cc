// ResolveLayerSettings: scheme, R and ADC bits per matrix layer (see passes.h).
#include "absl/strings/str_cat.h"
#include "passes/layer_metadata.h"
#include "passes/passes.h"

namespace pim::compiler {
namespace {

// Picks the first present value of option > layer metadata > model metadata > target default.
template <typename T>
absl::Status Resolve(const ir::Module& m, const std::optional<T>& option, const std::string& layer_key,
                     const std::string& model_key, T target_default,
                     absl::StatusOr<std::optional<T>> (*lookup)(const ir::Module&, const std::string&), T* value,
                     std::string* source) {
  if (option) {
    *value = *option;
    *source = "flag";
    return absl::OkStatus();
  }
  for (const auto& [key, name] : {std::pair{layer_key, "layer metadata"}, std::pair{model_key, "model metadata"}}) {
    absl::StatusOr<std::optional<T>> v = lookup(m, key);
    if (!v.ok()) return v.status();
    if (v->has_value()) {
      *value = **v;
      *source = name;
      return absl::OkStatus();
    }
  }
  *value = target_default;
  *source = "target default";
  return absl::OkStatus();
}

}  // namespace

absl::Status ResolveLayerSettings(ir::Module& module, const PassContext& context) {
  if (absl::Status s = CheckLayerKeys(module); !s.ok()) return s;
  // Model-wide settings are checked even where no layer reads them (a flag overrides them, or the
  // model has no quantized layer): a bad value is a bad file either way.
  if (absl::StatusOr<std::optional<runtime::Scheme>> s = LookupScheme(module, "pim.scheme"); !s.ok()) return s.status();
  for (const char* key : {"pim.rows", "pim.adc_bits"}) {
    absl::StatusOr<std::optional<int>> v = LookupInt(module, key);
    if (!v.ok()) return v.status();
    if (v->has_value() && **v < 1) {
      return absl::InvalidArgumentError(absl::StrCat("model metadata '", key, "' = ", **v, ": must be at least 1"));
    }
  }
  const runtime::ChipSpec& chip = context.target;
  for (ir::Step& step : module.steps) {
    ir::MatrixOp* layer = step.matrix();
    if (layer == nullptr) continue;
    const std::string& n = step.name;
    if (absl::Status s = Resolve<runtime::Scheme>(module, context.options.scheme, LayerKey(n, "scheme"), "pim.scheme",
                                                  chip.default_scheme, &LookupScheme, &layer->scheme,
                                                  &layer->scheme_source);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = Resolve<int>(module, context.options.rows, LayerKey(n, "rows"), "pim.rows", chip.rows,
                                      &LookupInt, &layer->rows, &layer->rows_source);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = Resolve<int>(module, context.options.adc_bits, LayerKey(n, "adc_bits"), "pim.adc_bits",
                                      chip.adc_bits, &LookupInt, &layer->adc_bits, &layer->adc_bits_source);
        !s.ok()) {
      return s;
    }
    if (layer->rows < 1 || layer->rows > chip.rows) {
      return absl::InvalidArgumentError(absl::StrCat(n, ": rows R = ", layer->rows, " (from ", layer->rows_source,
                                                     ") is outside 1..", chip.rows, " of target ", chip.name));
    }
    // A signed ADC (native, bit_serial) needs a positive code, so at least 2 bits.
    const int min_bits = layer->scheme == runtime::Scheme::kDifferential ? 1 : 2;
    if (layer->adc_bits < min_bits || layer->adc_bits > chip.adc_bits) {
      return absl::InvalidArgumentError(absl::StrCat(n, ": ADC bits ", layer->adc_bits, " (from ", layer->adc_bits_source,
                                                     ") is outside ", min_bits, "..", chip.adc_bits, " for ",
                                                     runtime::SchemeName(layer->scheme), " on target ", chip.name));
    }
  }
  return absl::OkStatus();
}

}  // namespace pim::compiler
