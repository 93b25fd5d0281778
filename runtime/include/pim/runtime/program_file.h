#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pim/proto/program.pb.h"

namespace pim::runtime {

// The Program format this runtime reads and the compiler writes (proto::Program.format_version).
inline constexpr uint32_t kProgramFormatVersion = 1;

// The ADC steps Delta a Program may hold: the compiler writes and loading accepts only these, and
// the simulator's kernels are exact over this range.
inline constexpr double kMinAdcStep = 1e-30;
inline constexpr double kMaxAdcStep = 1e30;

// The largest dimension and the most elements per sample a Program's values may have: loading
// refuses more, and the compiler refuses a model that would need more.
inline constexpr int64_t kMaxDim = int64_t(1) << 24;
inline constexpr int64_t kMaxSampleElements = int64_t(1) << 28;

// Checks dimensions 1.. of `shape` (dimension 0 is the batch) against kMaxDim and
// kMaxSampleElements, without overflow. InvalidArgument "shape [N, 3, 99999999]: dimension 2 is
// 99999999, must be in [1, 16777216]" or "shape ... has more than 268435456 elements per sample".
absl::Status CheckSampleShape(const std::vector<int64_t>& shape);

// Shape of every value of a Program, by name. Dimension 0 is the batch and is -1.
using ValueShapes = std::map<std::string, std::vector<int64_t>>;

// Reads a .pimb file, parses it and validates it with ValidateProgram. Every failure (missing
// file, not a protobuf, bad version, any inconsistent size, index or name) is one
// InvalidArgument/NotFound status whose message starts with the path and names the step, field
// and value; a corrupted file never crashes the loader.
absl::StatusOr<proto::Program> ReadProgramFile(const std::string& path);

// As ReadProgramFile for bytes already in memory; `origin` names them in errors.
absl::StatusOr<proto::Program> ParseProgram(const std::string& bytes, const std::string& origin);

// Checks everything a runtime relies on:
// - format_version == kProgramFormatVersion, the target chip spec is valid, enums are known;
// - values: graph inputs have shape [-1, d1, ...] with positive d_i; every step input is defined
//   before use (by a graph input or an earlier step), every output is defined exactly once,
//   every graph output is defined; the operand count fits the step kind;
// - shapes: every step's input shapes fit its kind and parameters (conv geometry, K, broadcast,
//   pool windows, reshape element count, concat axes);
// - matrix layers: weight_codes holds O*K codes within +-(2^(b_w-1)-1), weight_scale has O or
//   1 entries, bias O or 0, all numbers finite;
// - PIM layers: scheme, R, ADC bits and step within the target; every tile inside the layer and
//   inside one row group, tiles covering the O x K matrix exactly once, placed inside the chip
//   (macro, bank, rows, columns = outputs * ColumnsPerWeight), ids unique, load phase listed and
//   naming the layer, and no two tiles of one load phase sharing a cell of the same bank;
// - the BN calibration record, if any: its layers are distinct batch_norm steps, and an ADC
//   calibration it names has a path and a SHA-256 of 64 lowercase hex digits.
// `origin` prefixes every message.
absl::Status ValidateProgram(const proto::Program& program, const std::string& origin);

// Shapes of all values of a Program that passed ValidateProgram (graph inputs included).
absl::StatusOr<ValueShapes> InferValueShapes(const proto::Program& program);

}  // namespace pim::runtime
