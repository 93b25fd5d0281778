#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "pim/runtime/chip_spec.h"

namespace pim::runtime {

// Where a tile lives on the chip.
struct TilePlacement {
  int macro = 0;
  int bank = 0;
  int row_offset = 0;
  int column_offset = 0;
  int columns = 0;  // physical columns used (scheme and weight bits decide)
};

// One block of a layer's weight matrix: reduction rows [k_begin, k_end) of one row group,
// outputs [out_begin, out_end).
struct TileSpec {
  uint32_t id = 0;  // unique within a Program
  int row_group = 0;
  int k_begin = 0;
  int k_end = 0;
  int out_begin = 0;
  int out_end = 0;
  TilePlacement placement;
  int load_phase = 0;

  int rows() const { return k_end - k_begin; }
  int outputs() const { return out_end - out_begin; }
};

// Everything a backend needs to hold and run one PIM matrix layer. Owned by the executor;
// backends may keep a pointer to it between LoadLayer and the last RunLayer of a phase.
//
// `tiles` may be a subset of the layer's tiles: a layer whose tiles sit in several load phases
// is run as one LayerMapping per phase (same name, weight_codes of the whole layer, only that
// phase's tiles), and the executor adds the partial sums. RunLayer then returns S over those
// tiles only (outputs no tile covers get 0).
struct LayerMapping {
  std::string name;
  int out_channels = 0;  // O
  int reduction = 0;     // K
  Scheme scheme = Scheme::kNative;
  int rows = 0;          // R, rows per analog MAC
  int adc_bits = 0;
  double adc_step = 1.0;  // Delta, integer-MAC units
  int weight_bits = 0;
  int input_bits = 0;
  std::vector<int8_t> weight_codes;  // [O][K] row-major
  std::vector<TileSpec> tiles;
};

// The weights of one tile as the device stores them: codes [outputs][rows] (row-major by output).
struct TileImage {
  TileSpec tile;
  Scheme scheme = Scheme::kNative;
  int weight_bits = 0;
  std::vector<int8_t> codes;
};

// ADC settings of a tile's columns.
struct AdcSetting {
  int adc_bits = 0;
  double adc_step = 1.0;
};

// A batch of M input vectors for one layer or tile: codes X in [0, 2^input_bits - 1],
// row-major [M][width]. `first_sample` is the global sample index of vector 0 (vector m is
// sample first_sample + m); noise is a function of it, so results do not depend on batching.
// `codes_checked`: the producer has already checked every code against input_bits (the
// executor does so while narrowing a layer's input, ToCodes), so a backend need not scan them
// again; codes from anywhere else (a wire, a test) leave it false and are checked.
struct InputBatch {
  const uint8_t* codes = nullptr;
  int vectors = 0;  // M
  int width = 0;    // K for a layer, rows() for a tile
  int input_bits = 0;
  uint64_t first_sample = 0;
  bool codes_checked = false;
};

// Conversions per output of one tile MVM: 1 (native), 2 (differential: + then -),
// input_bits (bit_serial: plane j at index j).
int ConversionsPerOutput(Scheme scheme, int input_bits);

// Physical columns one weight (one output of a tile) occupies, docs/chip-model.md 1: ceil(b_w / cell_bits)
// for native and bit_serial, twice the magnitude columns 2 * ceil((b_w - 1) / cell_bits) for
// differential. A tile's `columns` is outputs() times this.
int ColumnsPerWeight(Scheme scheme, int weight_bits, int cell_bits);

// Named counters (gem5-style stats): "cycles", "adc.conversions", "adc.saturations",
// "xbar.macs", "energy.adc_pj", "link.bytes", ... Values are cumulative since the backend opened.
using Counters = std::map<std::string, double>;

// What the caller learns when it opens a device (the handshake, or the simulator's description).
struct ChipInfo {
  ChipSpec spec;
  std::string backend;           // "sim", "usb", "serial", "tcp"
  std::string serial_number;
  std::string firmware_version;
};

// A chip that stores weights and performs MVM + ADC on them. Created from a device URI by a
// BackendRegistry; owned by the caller. Not thread-safe: one caller at a time.
//
// Call order: info() at any time; WriteTile/ConfigureAdc before RunTile on that tile; RunLayer
// after LoadLayer for that layer. A device reset loses every written tile (see ResetDetected).
class Backend {
 public:
  virtual ~Backend() = default;

  virtual const ChipInfo& info() const = 0;

  // Device primitives. Codes out of RunTile are [M][outputs][ConversionsPerOutput] raw ADC codes.
  virtual absl::Status WriteTile(const TileImage& image) = 0;
  virtual absl::Status ConfigureAdc(uint32_t tile_id, const AdcSetting& setting) = 0;
  virtual absl::Status RunTile(uint32_t tile_id, const InputBatch& inputs,
                               absl::Span<int16_t> codes) = 0;
  virtual absl::StatusOr<Counters> ReadCounters() = 0;

  // Writes and configures every tile of `layer`. The default uses WriteTile and ConfigureAdc.
  virtual absl::Status LoadLayer(const LayerMapping& layer);

  // S[m][o] (row-major [M][O]) for M vectors of width K. The default runs every tile with
  // RunTile and accumulates on the host as docs/onnx-convention.md 3.1 says; the simulator overrides it with its
  // fused kernel. Results are identical either way.
  virtual absl::Status RunLayer(const LayerMapping& layer, const InputBatch& inputs,
                                absl::Span<int32_t> sums);
};

}  // namespace pim::runtime
