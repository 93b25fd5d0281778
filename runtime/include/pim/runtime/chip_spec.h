#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace pim::proto {
class ChipSpec;
}

namespace pim::runtime {

enum class Scheme { kNative, kDifferential, kBitSerial };

const char* SchemeName(Scheme scheme);  // "native", "differential", "bit_serial"

struct ChipTiming {
  double clock_mhz = 0;
  int weight_write_cycles_per_row = 0;
  int bank_switch_cycles = 0;
  int input_load_cycles = 0;
  int mac_settle_cycles = 0;
  int readout_columns_per_cycle = 0;
  double link_bytes_per_second = 0;
};

struct ChipEnergy {
  double mac_pj_per_row_column = 0;
  double adc_pj_per_conversion_bit = 0;
  double weight_write_pj_per_cell = 0;
  double input_load_pj_per_row = 0;
  double readout_pj_per_code = 0;
  double digital_pj_per_op = 0;
  double link_pj_per_byte = 0;
};

// The static description of a chip (the plain form of proto::ChipSpec).
struct ChipSpec {
  std::string name;
  int macros = 0;
  int banks_per_macro = 0;
  int rows = 0;
  int columns = 0;
  int cell_bits = 0;
  int adc_bits = 0;
  int max_input_bits = 0;
  int max_weight_bits = 0;
  int max_bit_serial_input_bits = 0;
  Scheme default_scheme = Scheme::kNative;
  ChipTiming timing;
  ChipEnergy energy;
};

// Validates ranges and converts; the error names the field and the value.
absl::StatusOr<ChipSpec> ChipSpecFromProto(const proto::ChipSpec& spec);
void ChipSpecToProto(const ChipSpec& spec, proto::ChipSpec* out);

}  // namespace pim::runtime
