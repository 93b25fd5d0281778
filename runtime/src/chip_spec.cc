#include "pim/runtime/chip_spec.h"

#include "absl/strings/str_cat.h"
#include "pim/proto/chip.pb.h"

namespace pim::runtime {
namespace {

absl::Status CheckRange(const char* field, double value, double lo, double hi) {
  if (!(value >= lo && value <= hi)) {
    return absl::InvalidArgumentError(
        absl::StrCat("chip spec field '", field, "' is ", value, ", must be in [", lo, ", ", hi, "]"));
  }
  return absl::OkStatus();
}

}  // namespace

const char* SchemeName(Scheme scheme) {
  switch (scheme) {
    case Scheme::kNative: return "native";
    case Scheme::kDifferential: return "differential";
    case Scheme::kBitSerial: return "bit_serial";
  }
  return "?";
}

absl::StatusOr<ChipSpec> ChipSpecFromProto(const proto::ChipSpec& in) {
  struct Field {
    const char* name;
    double value;
    double lo;
    double hi;
  };
  const Field fields[] = {
      {"macros", double(in.macros()), 1, 4096},
      {"banks_per_macro", double(in.banks_per_macro()), 1, 256},
      {"rows", double(in.rows()), 1, 4096},
      {"columns", double(in.columns()), 1, 4096},
      {"cell_bits", double(in.cell_bits()), 1, 8},
      {"adc_bits", double(in.adc_bits()), 1, 12},
      {"max_input_bits", double(in.max_input_bits()), 1, 8},
      {"max_weight_bits", double(in.max_weight_bits()), 2, 8},
      {"max_bit_serial_input_bits", double(in.max_bit_serial_input_bits()), 1, 8},
      {"timing.clock_mhz", in.timing().clock_mhz(), 1e-3, 1e5},
      {"timing.weight_write_cycles_per_row", double(in.timing().weight_write_cycles_per_row()), 0, 1e6},
      {"timing.bank_switch_cycles", double(in.timing().bank_switch_cycles()), 0, 1e6},
      {"timing.input_load_cycles", double(in.timing().input_load_cycles()), 0, 1e6},
      {"timing.mac_settle_cycles", double(in.timing().mac_settle_cycles()), 0, 1e6},
      {"timing.readout_columns_per_cycle", double(in.timing().readout_columns_per_cycle()), 1, 4096},
      {"timing.link_bytes_per_second", in.timing().link_bytes_per_second(), 0, 1e12},
      {"energy.mac_pj_per_row_column", in.energy().mac_pj_per_row_column(), 0, 1e6},
      {"energy.adc_pj_per_conversion_bit", in.energy().adc_pj_per_conversion_bit(), 0, 1e6},
      {"energy.weight_write_pj_per_cell", in.energy().weight_write_pj_per_cell(), 0, 1e6},
      {"energy.input_load_pj_per_row", in.energy().input_load_pj_per_row(), 0, 1e6},
      {"energy.readout_pj_per_code", in.energy().readout_pj_per_code(), 0, 1e6},
      {"energy.digital_pj_per_op", in.energy().digital_pj_per_op(), 0, 1e6},
      {"energy.link_pj_per_byte", in.energy().link_pj_per_byte(), 0, 1e9},
  };
  for (const Field& f : fields) {
    if (absl::Status s = CheckRange(f.name, f.value, f.lo, f.hi); !s.ok()) return s;
  }
  ChipSpec out;
  out.name = in.name();
  out.macros = int(in.macros());
  out.banks_per_macro = int(in.banks_per_macro());
  out.rows = int(in.rows());
  out.columns = int(in.columns());
  out.cell_bits = int(in.cell_bits());
  out.adc_bits = int(in.adc_bits());
  out.max_input_bits = int(in.max_input_bits());
  out.max_weight_bits = int(in.max_weight_bits());
  out.max_bit_serial_input_bits = int(in.max_bit_serial_input_bits());
  switch (in.default_scheme()) {
    case proto::NATIVE: out.default_scheme = Scheme::kNative; break;
    case proto::DIFFERENTIAL: out.default_scheme = Scheme::kDifferential; break;
    case proto::BIT_SERIAL: out.default_scheme = Scheme::kBitSerial; break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("chip spec field 'default_scheme' is ", int(in.default_scheme()),
                       ", must be NATIVE, DIFFERENTIAL or BIT_SERIAL"));
  }
  const proto::ChipTiming& t = in.timing();
  out.timing.clock_mhz = t.clock_mhz();
  out.timing.weight_write_cycles_per_row = int(t.weight_write_cycles_per_row());
  out.timing.bank_switch_cycles = int(t.bank_switch_cycles());
  out.timing.input_load_cycles = int(t.input_load_cycles());
  out.timing.mac_settle_cycles = int(t.mac_settle_cycles());
  out.timing.readout_columns_per_cycle = int(t.readout_columns_per_cycle());
  out.timing.link_bytes_per_second = t.link_bytes_per_second();
  const proto::ChipEnergy& e = in.energy();
  out.energy.mac_pj_per_row_column = e.mac_pj_per_row_column();
  out.energy.adc_pj_per_conversion_bit = e.adc_pj_per_conversion_bit();
  out.energy.weight_write_pj_per_cell = e.weight_write_pj_per_cell();
  out.energy.input_load_pj_per_row = e.input_load_pj_per_row();
  out.energy.readout_pj_per_code = e.readout_pj_per_code();
  out.energy.digital_pj_per_op = e.digital_pj_per_op();
  out.energy.link_pj_per_byte = e.link_pj_per_byte();
  return out;
}

void ChipSpecToProto(const ChipSpec& in, proto::ChipSpec* out) {
  out->Clear();
  out->set_name(in.name);
  out->set_macros(in.macros);
  out->set_banks_per_macro(in.banks_per_macro);
  out->set_rows(in.rows);
  out->set_columns(in.columns);
  out->set_cell_bits(in.cell_bits);
  out->set_adc_bits(in.adc_bits);
  out->set_max_input_bits(in.max_input_bits);
  out->set_max_weight_bits(in.max_weight_bits);
  out->set_max_bit_serial_input_bits(in.max_bit_serial_input_bits);
  switch (in.default_scheme) {
    case Scheme::kNative: out->set_default_scheme(proto::NATIVE); break;
    case Scheme::kDifferential: out->set_default_scheme(proto::DIFFERENTIAL); break;
    case Scheme::kBitSerial: out->set_default_scheme(proto::BIT_SERIAL); break;
  }
  proto::ChipTiming* t = out->mutable_timing();
  t->set_clock_mhz(in.timing.clock_mhz);
  t->set_weight_write_cycles_per_row(in.timing.weight_write_cycles_per_row);
  t->set_bank_switch_cycles(in.timing.bank_switch_cycles);
  t->set_input_load_cycles(in.timing.input_load_cycles);
  t->set_mac_settle_cycles(in.timing.mac_settle_cycles);
  t->set_readout_columns_per_cycle(in.timing.readout_columns_per_cycle);
  t->set_link_bytes_per_second(in.timing.link_bytes_per_second);
  proto::ChipEnergy* e = out->mutable_energy();
  e->set_mac_pj_per_row_column(in.energy.mac_pj_per_row_column);
  e->set_adc_pj_per_conversion_bit(in.energy.adc_pj_per_conversion_bit);
  e->set_weight_write_pj_per_cell(in.energy.weight_write_pj_per_cell);
  e->set_input_load_pj_per_row(in.energy.input_load_pj_per_row);
  e->set_readout_pj_per_code(in.energy.readout_pj_per_code);
  e->set_digital_pj_per_op(in.energy.digital_pj_per_op);
  e->set_link_pj_per_byte(in.energy.link_pj_per_byte);
}

}  // namespace pim::runtime
