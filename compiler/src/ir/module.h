#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "ir/graph.h"
#include "pim/runtime/chip_spec.h"

namespace pim::compiler::ir {

// The lowered program: host steps and matrix layers in execution order. Produced by LowerGraph,
// refined by the passes, turned into a proto::Program by the emitter. Protobuf-free on purpose.

struct QuantizeOp {  // X = clamp(rne(x / scale) + zero_point, lo, hi)
  double scale = 1;
  int64_t zero_point = 0;
  int64_t lo = 0;
  int64_t hi = 255;
};

struct DequantizeOp {  // y = (q - zero_point) * scale
  double scale = 1;
  int64_t zero_point = 0;
};

struct ConvGeometry {
  int in_channels = 0;
  int kernel_h = 1, kernel_w = 1;
  int stride_h = 1, stride_w = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int dilation_h = 1, dilation_w = 1;
};

enum class Placement { kPim, kDigital };
enum class AdcStepRule { kTrained, kFullRange, kOverride };
const char* PlacementName(Placement placement);  // "pim", "digital"
const char* AdcStepRuleName(AdcStepRule rule);   // "trained", "full-range", "override"

struct Prediction {
  uint64_t cycles = 0;
  double energy_pj = 0;
  uint64_t conversions = 0;
  uint64_t macs = 0;
};

struct Tile {
  uint32_t id = 0;
  int row_group = 0;
  int k_begin = 0, k_end = 0;
  int out_begin = 0, out_end = 0;
  int macro = 0, bank = 0;
  int row_offset = 0, column_offset = 0;
  int columns = 0;
  int load_phase = 0;
};

// A quantized Conv/Gemm/MatMul (docs/onnx-convention.md section 3).
struct MatrixOp {
  int out_channels = 0;  // O
  int reduction = 0;     // K
  std::optional<ConvGeometry> conv;
  int weight_bits = 0;                // b_w
  int input_bits = 0;                 // b_a
  std::vector<int8_t> weight_codes;   // Q, [O][K] row-major, k = (c, ky, kx)
  std::vector<double> weight_scale;   // size O or 1
  double input_scale = 1;             // s_x
  std::vector<double> bias;           // size O or 0
  Shape output_spatial;               // conv: {H_out, W_out}; empty for fully connected

  // Decided by the passes.
  Placement placement = Placement::kPim;
  std::string placement_reason;
  runtime::Scheme scheme = runtime::Scheme::kNative;
  std::string scheme_source;    // "flag", "layer metadata", "model metadata", "target default"
  int rows = 0;                 // R
  std::string rows_source;
  int adc_bits = 0;
  std::string adc_bits_source;
  double adc_step = 1;          // Delta
  AdcStepRule adc_step_rule = AdcStepRule::kFullRange;
  std::vector<Tile> tiles;
  Prediction predicted;

  int max_abs_code() const;
};

// An unquantized Conv/Gemm/MatMul computed on the host in double.
struct FloatMatrixOp {
  int out_channels = 0;
  int reduction = 0;
  std::optional<ConvGeometry> conv;
  std::vector<double> weight;  // [O][K]
  std::vector<double> bias;    // size O or 0
  std::string reason;          // why it is not a quantized matrix layer
  bool weight_quantized = false;  // quantized weights, but the input is not codes
  Prediction predicted;
};

struct BatchNormOp {
  std::vector<double> scale, bias, mean, var;
  double epsilon = 1e-5;
};
struct ReluOp {};
struct ClipOp {
  double lo = 0, hi = 0;
};
struct AddOp {};
struct PoolOp {
  enum class Kind { kMax, kAverage, kGlobalAverage };
  Kind kind = Kind::kMax;
  int kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  bool count_include_pad = false;
  bool ceil_mode = false;
};
struct ReshapeOp {
  Shape shape;  // output shape, batch as kBatch
};
struct SoftmaxOp {
  int axis = -1;
};
struct ConcatOp {
  int axis = 1;
};

using StepOp = std::variant<QuantizeOp, DequantizeOp, MatrixOp, FloatMatrixOp, BatchNormOp, ReluOp,
                            ClipOp, AddOp, PoolOp, ReshapeOp, SoftmaxOp, ConcatOp>;

struct Step {
  std::string name;  // ONNX node name
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  StepOp op;

  MatrixOp* matrix() { return std::get_if<MatrixOp>(&op); }
  const MatrixOp* matrix() const { return std::get_if<MatrixOp>(&op); }
};

struct LoadPhase {
  int index = 0;
  std::vector<std::string> layers;
  uint64_t weight_cells = 0;
};

struct Module {
  std::string source_name;
  std::string source_sha256;
  std::string training;
  std::map<std::string, std::string> metadata;
  std::vector<GraphInput> inputs;
  std::vector<std::string> outputs;
  std::vector<Step> steps;
  std::map<std::string, Shape> shapes;  // every value's shape (batch as kBatch)
  std::vector<LoadPhase> load_phases;
  Prediction predicted;
};

}  // namespace pim::compiler::ir
