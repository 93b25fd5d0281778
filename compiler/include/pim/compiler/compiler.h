#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pim/proto/program.pb.h"
#include "pim/runtime/chip_spec.h"

namespace pim::compiler {

// The Program format version this compiler writes is runtime::kProgramFormatVersion
// (pim/runtime/program_file.h; docs/program-format.md, "Versioning").

// Producer string recorded in every Program.
std::string ProducerString();  // "pimc 0.1.0"

// Command-line level settings. Each one, when set, overrides the model's metadata for every
// layer (precedence: option > pim.layer.<node>.* > pim.* > target default).
struct CompileOptions {
  std::optional<runtime::Scheme> scheme;
  std::optional<int> adc_bits;
  std::optional<int> rows;           // R
  std::optional<double> adc_step;    // Delta for every PIM layer (rule "override")
  bool require_pim = false;          // a quantized layer that cannot go to PIM is an error
};

// Compiles an ONNX model (its bytes; `model_name` names it in errors and in the Program) for
// `target`. The result passed runtime::ValidateProgram. Thread-compatible: no shared state.
// Never throws.
absl::StatusOr<proto::Program> CompileModel(const std::string& onnx_bytes, const std::string& model_name,
                                            const runtime::ChipSpec& target, const CompileOptions& options);

// Reads `path` and compiles it; the Program records the file's base name and SHA-256.
absl::StatusOr<proto::Program> CompileFile(const std::string& path, const runtime::ChipSpec& target,
                                           const CompileOptions& options);

// Deterministic serialization: the same Program always gives the same bytes.
std::string SerializeProgram(const proto::Program& program);

// Writes SerializeProgram(program) to `path` (through a temporary file and a rename, so a failed
// write never leaves a partial .pimb behind).
absl::Status WriteProgramFile(const proto::Program& program, const std::string& path);

}  // namespace pim::compiler
