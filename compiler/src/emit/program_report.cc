#include "pim/compiler/program_report.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "pim/runtime/json.h"

namespace pim::compiler {
namespace {

using runtime::JsonNumber;
using runtime::JsonString;

const char* SchemeText(proto::Scheme s) {
  switch (s) {
    case proto::NATIVE: return "native";
    case proto::DIFFERENTIAL: return "differential";
    case proto::BIT_SERIAL: return "bit_serial";
    default: return "unspecified";
  }
}

const char* RuleText(proto::AdcStepRule r) {
  switch (r) {
    case proto::TRAINED: return "trained";
    case proto::FULL_RANGE: return "full-range";
    case proto::OVERRIDE: return "override";
    default: return "unspecified";
  }
}

std::string StepKind(const proto::Step& s) {
  switch (s.kind_case()) {
    case proto::Step::kQuantize: return "quantize";
    case proto::Step::kDequantize: return "dequantize";
    case proto::Step::kMatrix: return "matrix";
    case proto::Step::kBatchNorm: return "batch_norm";
    case proto::Step::kRelu: return "relu";
    case proto::Step::kClip: return "clip";
    case proto::Step::kAdd: return "add";
    case proto::Step::kPool:
      return s.pool().kind() == proto::PoolStep::MAX       ? "max_pool"
             : s.pool().kind() == proto::PoolStep::AVERAGE ? "average_pool"
                                                           : "global_average_pool";
    case proto::Step::kReshape: return "reshape";
    case proto::Step::kSoftmax: return "softmax";
    case proto::Step::kConcat: return "concat";
    case proto::Step::kFloatMatrix: return "float_matrix";
    default: return "unknown";
  }
}

// Summary of one matrix layer's tiles.
struct TileSummary {
  std::set<uint32_t> macros, banks, phases;
  uint64_t cells = 0;
};

TileSummary Summarize(const proto::PimMapping& pim) {
  TileSummary t;
  for (const proto::Tile& tile : pim.tiles()) {
    t.macros.insert(tile.macro());
    t.banks.insert(tile.bank());
    t.phases.insert(tile.load_phase());
    t.cells += static_cast<uint64_t>(tile.k_end() > tile.k_begin() ? tile.k_end() - tile.k_begin() : 0) * tile.columns();
  }
  return t;
}

std::string SetText(const std::set<uint32_t>& s) { return absl::StrJoin(s, ","); }

std::string SetJson(const std::set<uint32_t>& s) { return absl::StrCat("[", absl::StrJoin(s, ","), "]"); }

double ChipCells(const proto::ChipSpec& c) {
  return static_cast<double>(c.macros()) * c.banks_per_macro() * c.rows() * c.columns();
}

std::string Text(const proto::Program& p, const ReportOptions& o) {
  std::string out;
  const proto::ChipSpec& c = p.target();
  absl::StrAppendFormat(&out, "program  %s (format %u, %s)\n", p.source_model_name(), p.format_version(), p.producer());
  absl::StrAppendFormat(&out, "model    sha256 %s, training %s\n", p.source_model_sha256(),
                        p.training().empty() ? "(not recorded)" : p.training());
  absl::StrAppendFormat(&out, "target   %s: %u macros x %u banks, %u rows x %u columns, %u-bit cells, ADC %u bits\n",
                        c.name(), c.macros(), c.banks_per_macro(), c.rows(), c.columns(), c.cell_bits(), c.adc_bits());
  if (p.has_bn_calibration()) {
    const proto::BnCalibrationRecord& r = p.bn_calibration();
    absl::StrAppendFormat(&out, "bn cal   pimcal bn on %s (serial %s), %u samples of %s: %s\n", r.device(),
                          r.device_serial().empty() ? "(not recorded)" : r.device_serial(), r.samples(), r.data(),
                          absl::StrJoin(r.layers(), ", "));
    if (r.has_adc_calibration()) {
      const proto::AdcCalibrationRef& a = r.adc_calibration();
      absl::StrAppendFormat(&out,
                            "         measured through ADC calibration %s (sha256 %s, device serial %s): run with "
                            "pimrun --calibration on that file\n",
                            a.path(), a.sha256(), a.device_serial().empty() ? "(not recorded)" : a.device_serial());
    } else {
      absl::StrAppend(&out, "         measured on raw ADC codes: run without pimrun --calibration\n");
    }
  }
  absl::StrAppend(&out, "\nlayers\n");
  for (const proto::Step& s : p.steps()) {
    if (s.has_matrix()) {
      const proto::MatrixLayer& m = s.matrix();
      absl::StrAppendFormat(&out, "  %-16s %-4s O=%u K=%u w%u a%u  %s: %s\n", s.name(), m.has_conv() ? "conv" : "fc",
                            m.out_channels(), m.reduction(), m.weight_bits(), m.input_bits(),
                            m.placement() == proto::PIM ? "PIM" : "digital", m.placement_reason());
      if (m.placement() == proto::PIM) {
        const proto::PimMapping& pim = m.pim();
        const TileSummary t = Summarize(pim);
        absl::StrAppendFormat(&out,
                              "  %-16s      scheme %s, R %u, ADC %u bits, Delta %.6g (%s); %d tiles on macros {%s} "
                              "banks {%s}, load phase %s\n",
                              "", SchemeText(pim.scheme()), pim.rows(), pim.adc_bits(), pim.adc_step(),
                              RuleText(pim.adc_step_rule()), pim.tiles_size(), SetText(t.macros), SetText(t.banks),
                              SetText(t.phases));
        if (o.tiles) {
          for (const proto::Tile& tile : pim.tiles()) {
            absl::StrAppendFormat(&out,
                                  "  %-16s        tile %u: group %u rows [%u,%u) outputs [%u,%u) -> macro %u bank %u "
                                  "rows %u.. columns %u..%u, phase %u\n",
                                  "", tile.id(), tile.row_group(), tile.k_begin(), tile.k_end(), tile.out_begin(),
                                  tile.out_end(), tile.macro(), tile.bank(), tile.row_offset(), tile.column_offset(),
                                  tile.column_offset() + tile.columns() - 1, tile.load_phase());
          }
        }
      }
      absl::StrAppendFormat(&out, "  %-16s      predicted %u cycles, %.4g pJ, %u conversions, %u MACs\n", "",
                            m.predicted().cycles(), m.predicted().energy_pj(), m.predicted().conversions(),
                            m.predicted().macs());
    } else if (s.has_float_matrix()) {
      const proto::FloatMatrixStep& f = s.float_matrix();
      absl::StrAppendFormat(&out, "  %-16s %-4s O=%u K=%u float  host: unquantized layer, computed in double\n",
                            s.name(), f.has_conv() ? "conv" : "fc", f.out_channels(), f.reduction());
    }
  }
  if (o.host_steps) {
    absl::StrAppend(&out, "\nsteps (execution order)\n");
    for (const proto::Step& s : p.steps()) {
      absl::StrAppendFormat(&out, "  %-22s %-20s %s -> %s\n", s.name(), StepKind(s), absl::StrJoin(s.inputs(), ", "),
                            absl::StrJoin(s.outputs(), ", "));
    }
  }
  absl::StrAppend(&out, "\nload phases\n");
  const double chip_cells = ChipCells(c);
  for (const proto::LoadPhase& lp : p.load_phases()) {
    absl::StrAppendFormat(&out, "  phase %u: %u weight cells (%.1f%% of the chip): %s\n", lp.index(), lp.weight_cells(),
                          chip_cells > 0 ? 100.0 * lp.weight_cells() / chip_cells : 0.0,
                          lp.layers().empty() ? "(no PIM layers)" : absl::StrJoin(lp.layers(), ", "));
  }
  if (p.load_phases_size() > 1) {
    absl::StrAppendFormat(&out, "  reload plan: the model does not fit at once; weights are rewritten %d times per batch\n",
                          p.load_phases_size() - 1);
  } else {
    absl::StrAppend(&out, "  the model fits on the chip: weights are written once\n");
  }
  int pim_layers = 0, digital_layers = 0, host_layers = 0, tiles = 0;
  for (const proto::Step& s : p.steps()) {
    if (s.has_matrix()) {
      (s.matrix().placement() == proto::PIM ? pim_layers : digital_layers)++;
      tiles += s.matrix().pim().tiles_size();
    }
    if (s.has_float_matrix()) host_layers++;
  }
  absl::StrAppendFormat(&out, "\ntotals   %d PIM layers, %d digital, %d float; %d tiles; %d steps\n", pim_layers,
                        digital_layers, host_layers, tiles, p.steps_size());
  absl::StrAppendFormat(&out, "predicted per sample: %u cycles, %.4g pJ, %u conversions, %u MACs\n",
                        p.predicted().cycles(), p.predicted().energy_pj(), p.predicted().conversions(),
                        p.predicted().macs());
  return out;
}

std::string Json(const proto::Program& p, const ReportOptions& o) {
  std::vector<std::string> fields;
  const proto::ChipSpec& c = p.target();
  fields.push_back(absl::StrCat("\"model\":", JsonString(p.source_model_name())));
  fields.push_back(absl::StrCat("\"sha256\":", JsonString(p.source_model_sha256())));
  fields.push_back(absl::StrCat("\"format_version\":", p.format_version()));
  fields.push_back(absl::StrCat("\"producer\":", JsonString(p.producer())));
  fields.push_back(absl::StrCat("\"training\":", JsonString(p.training())));
  fields.push_back(absl::StrCat("\"target\":{\"name\":", JsonString(c.name()), ",\"macros\":", c.macros(),
                                ",\"banks_per_macro\":", c.banks_per_macro(), ",\"rows\":", c.rows(),
                                ",\"columns\":", c.columns(), ",\"cell_bits\":", c.cell_bits(),
                                ",\"adc_bits\":", c.adc_bits(), "}"));
  if (p.has_bn_calibration()) {
    fields.push_back(absl::StrCat("\"bn_calibration\":", runtime::BnCalibrationRecordJson(p.bn_calibration())));
  }
  std::vector<std::string> layers;
  for (const proto::Step& s : p.steps()) {
    if (s.has_matrix()) {
      const proto::MatrixLayer& m = s.matrix();
      std::string l = absl::StrCat("{\"name\":", JsonString(s.name()), ",\"kind\":\"", m.has_conv() ? "conv" : "fc",
                                   "\",\"out_channels\":", m.out_channels(), ",\"reduction\":", m.reduction(),
                                   ",\"weight_bits\":", m.weight_bits(), ",\"input_bits\":", m.input_bits(),
                                   ",\"placement\":\"", m.placement() == proto::PIM ? "pim" : "digital",
                                   "\",\"reason\":", JsonString(m.placement_reason()));
      if (m.placement() == proto::PIM) {
        const proto::PimMapping& pim = m.pim();
        const TileSummary t = Summarize(pim);
        absl::StrAppend(&l, ",\"scheme\":\"", SchemeText(pim.scheme()), "\",\"rows\":", pim.rows(),
                        ",\"adc_bits\":", pim.adc_bits(), ",\"adc_step\":", JsonNumber(pim.adc_step()),
                        ",\"adc_step_rule\":\"", RuleText(pim.adc_step_rule()), "\",\"tiles\":", pim.tiles_size(),
                        ",\"macros\":", SetJson(t.macros), ",\"banks\":", SetJson(t.banks),
                        ",\"load_phases\":", SetJson(t.phases), ",\"weight_cells\":", t.cells);
        if (o.tiles) {
          std::vector<std::string> tiles;
          for (const proto::Tile& tile : pim.tiles()) {
            tiles.push_back(absl::StrCat("{\"id\":", tile.id(), ",\"row_group\":", tile.row_group(),
                                         ",\"k_begin\":", tile.k_begin(), ",\"k_end\":", tile.k_end(),
                                         ",\"out_begin\":", tile.out_begin(), ",\"out_end\":", tile.out_end(),
                                         ",\"macro\":", tile.macro(), ",\"bank\":", tile.bank(),
                                         ",\"row_offset\":", tile.row_offset(), ",\"column_offset\":",
                                         tile.column_offset(), ",\"columns\":", tile.columns(),
                                         ",\"load_phase\":", tile.load_phase(), "}"));
          }
          absl::StrAppend(&l, ",\"tile_list\":[", absl::StrJoin(tiles, ","), "]");
        }
      }
      absl::StrAppend(&l, ",\"predicted\":{\"cycles\":", m.predicted().cycles(),
                      ",\"energy_pj\":", JsonNumber(m.predicted().energy_pj()),
                      ",\"conversions\":", m.predicted().conversions(), ",\"macs\":", m.predicted().macs(), "}}");
      layers.push_back(l);
    } else if (s.has_float_matrix()) {
      layers.push_back(absl::StrCat("{\"name\":", JsonString(s.name()), ",\"kind\":\"",
                                    s.float_matrix().has_conv() ? "conv" : "fc",
                                    "\",\"out_channels\":", s.float_matrix().out_channels(),
                                    ",\"reduction\":", s.float_matrix().reduction(),
                                    ",\"placement\":\"host\",\"reason\":\"float layer (unquantized)\"}"));
    }
  }
  fields.push_back(absl::StrCat("\"layers\":[", absl::StrJoin(layers, ","), "]"));
  if (o.host_steps) {
    std::vector<std::string> steps;
    for (const proto::Step& s : p.steps()) {
      std::vector<std::string> ins, outs;
      for (const auto& i : s.inputs()) ins.push_back(JsonString(i));
      for (const auto& i : s.outputs()) outs.push_back(JsonString(i));
      steps.push_back(absl::StrCat("{\"name\":", JsonString(s.name()), ",\"kind\":\"", StepKind(s), "\",\"inputs\":[",
                                   absl::StrJoin(ins, ","), "],\"outputs\":[", absl::StrJoin(outs, ","), "]}"));
    }
    fields.push_back(absl::StrCat("\"steps\":[", absl::StrJoin(steps, ","), "]"));
  }
  std::vector<std::string> phases;
  const double chip_cells = ChipCells(c);
  for (const proto::LoadPhase& lp : p.load_phases()) {
    std::vector<std::string> names;
    for (const auto& l : lp.layers()) names.push_back(JsonString(l));
    phases.push_back(absl::StrCat("{\"index\":", lp.index(), ",\"layers\":[", absl::StrJoin(names, ","),
                                  "],\"weight_cells\":", lp.weight_cells(), ",\"utilization\":",
                                  JsonNumber(chip_cells > 0 ? lp.weight_cells() / chip_cells : 0.0), "}"));
  }
  fields.push_back(absl::StrCat("\"load_phases\":[", absl::StrJoin(phases, ","), "]"));
  fields.push_back(absl::StrCat("\"predicted\":{\"cycles\":", p.predicted().cycles(),
                                ",\"energy_pj\":", JsonNumber(p.predicted().energy_pj()),
                                ",\"conversions\":", p.predicted().conversions(), ",\"macs\":", p.predicted().macs(),
                                "}"));
  return absl::StrCat("{", absl::StrJoin(fields, ","), "}\n");
}

}  // namespace

std::string FormatProgramReport(const proto::Program& program, const ReportOptions& options) {
  return options.json ? Json(program, options) : Text(program, options);
}

}  // namespace pim::compiler
