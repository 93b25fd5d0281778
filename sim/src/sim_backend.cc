#include "pim/sim/sim_backend.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "pim/proto/chip.pb.h"
#include "pim/runtime/chip_file.h"
#include "pim/sim/noise.h"
#include "pim/sim/profile.h"

namespace pim::sim {
namespace {

// True when the tiles hold every (row group, output) of the layer exactly once, each tile
// exactly one row group's rows. Only then is the layer's result the fused kernel's result; a
// partial mapping (one load phase of a layer split over several) runs tile by tile.
bool TilesCoverLayerOnce(const runtime::LayerMapping& layer) {
  if (layer.rows < 1 || layer.out_channels < 1 || layer.reduction < 1) return false;
  const int groups = (layer.reduction + layer.rows - 1) / layer.rows;
  std::vector<uint8_t> hits(size_t(groups) * size_t(layer.out_channels), 0);
  for (const runtime::TileSpec& t : layer.tiles) {
    if (t.row_group < 0 || t.row_group >= groups || t.k_begin != t.row_group * layer.rows ||
        t.k_end != std::min(layer.reduction, (t.row_group + 1) * layer.rows) || t.out_begin < 0 ||
        t.out_end > layer.out_channels || t.out_begin >= t.out_end) {
      return false;
    }
    for (int o = t.out_begin; o < t.out_end; ++o) {
      if (hits[size_t(t.row_group) * layer.out_channels + o]++ != 0) return false;
    }
  }
  for (uint8_t h : hits) {
    if (h != 1) return false;
  }
  return true;
}

int MaxInputBits(const runtime::ChipSpec& spec, runtime::Scheme scheme) {
  return scheme == runtime::Scheme::kBitSerial ? spec.max_bit_serial_input_bits : spec.max_input_bits;
}

}  // namespace

namespace {
NonIdealityParams Seeded(NonIdealityParams p, uint64_t seed) {
  p.seed = seed;
  return p;
}
}  // namespace

SimBackend::SimBackend(const SimParams& params)
    : params_(params), adc_(Seeded(params.profile, params.seed)), timing_(params.spec),
      active_bank_(size_t(std::max(params.spec.macros, 0)), 0) {
  info_.spec = params.spec;
  info_.backend = "sim";
  info_.serial_number = absl::StrCat("sim-", params.seed);
  info_.firmware_version = absl::StrCat("pim-sim ", adc_.ideal() ? "ideal" : "non-ideal", " (profile ",
                                        params.profile_name, ", kernel ", KernelIsaName(params.kernel.isa), ")");
}

absl::StatusOr<std::unique_ptr<SimBackend>> SimBackend::Create(const SimParams& params) {
  proto::ChipSpec as_proto;
  runtime::ChipSpecToProto(params.spec, &as_proto);
  if (absl::StatusOr<runtime::ChipSpec> checked = runtime::ChipSpecFromProto(as_proto); !checked.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("sim: chip '", params.spec.name, "': ", checked.status().message()));
  }
  return std::unique_ptr<SimBackend>(new SimBackend(params));
}

absl::Status SimBackend::WriteTile(const runtime::TileImage& image) {
  const runtime::ChipSpec& spec = params_.spec;
  const runtime::TileSpec& t = image.tile;
  const runtime::TilePlacement& p = t.placement;
  const std::string at = absl::StrCat("sim: WriteTile ", t.id, ": ");
  if (t.rows() < 1 || t.outputs() < 1) {
    return absl::InvalidArgumentError(absl::StrCat(at, t.rows(), " rows x ", t.outputs(), " outputs"));
  }
  if (p.macro < 0 || p.macro >= spec.macros || p.bank < 0 || p.bank >= spec.banks_per_macro) {
    return absl::InvalidArgumentError(absl::StrCat(at, "macro ", p.macro, ", bank ", p.bank, " outside ",
                                                   spec.macros, " macros x ", spec.banks_per_macro, " banks"));
  }
  if (image.weight_bits < 2 || image.weight_bits > spec.max_weight_bits) {
    return absl::InvalidArgumentError(absl::StrCat(at, image.weight_bits, "-bit weights, chip stores 2..",
                                                   spec.max_weight_bits));
  }
  const int per_weight = runtime::ColumnsPerWeight(image.scheme, image.weight_bits, spec.cell_bits);
  if (p.columns != t.outputs() * per_weight) {
    return absl::InvalidArgumentError(absl::StrCat(at, p.columns, " columns for ", t.outputs(), " outputs of ",
                                                   image.weight_bits, "-bit ", runtime::SchemeName(image.scheme),
                                                   " weights (need ", t.outputs() * per_weight, ")"));
  }
  if (p.row_offset < 0 || p.column_offset < 0 || p.row_offset + t.rows() > spec.rows ||
      p.column_offset + p.columns > spec.columns) {
    return absl::InvalidArgumentError(absl::StrCat(at, "rows [", p.row_offset, ", ", p.row_offset + t.rows(),
                                                   ") x columns [", p.column_offset, ", ", p.column_offset + p.columns,
                                                   ") outside the ", spec.rows, " x ", spec.columns, " macro"));
  }
  if (image.codes.size() != size_t(t.outputs()) * size_t(t.rows())) {
    return absl::InvalidArgumentError(absl::StrCat(at, image.codes.size(), " codes for ", t.outputs(),
                                                   " outputs x ", t.rows(), " rows"));
  }
  const int qmax = (1 << (image.weight_bits - 1)) - 1;
  for (size_t i = 0; i < image.codes.size(); ++i) {
    if (image.codes[i] < -qmax || image.codes[i] > qmax) {
      return absl::InvalidArgumentError(absl::StrCat(at, "code ", int(image.codes[i]), " at [", i / size_t(t.rows()),
                                                     ", ", i % size_t(t.rows()), "] outside +-", qmax));
    }
  }
  // Overwrite: any tile sharing a cell of this macro and bank is gone.
  for (auto it = tiles_.begin(); it != tiles_.end();) {
    const runtime::TileSpec& o = it->second.image.tile;
    const runtime::TilePlacement& q = o.placement;
    const bool overlaps = q.macro == p.macro && q.bank == p.bank && q.row_offset < p.row_offset + t.rows() &&
                          p.row_offset < q.row_offset + o.rows() && q.column_offset < p.column_offset + p.columns &&
                          p.column_offset < q.column_offset + q.columns;
    if (overlaps || it->first == t.id) {
      it = tiles_.erase(it);
    } else {
      ++it;
    }
  }
  tiles_[t.id] = StoredTile{image, std::nullopt};
  cost_.Add(timing_.WriteTile(t.rows(), p.columns));
  ++tiles_written_;
  cells_written_ += uint64_t(t.rows()) * uint64_t(p.columns);
  return absl::OkStatus();
}

absl::Status SimBackend::ConfigureAdc(uint32_t tile_id, const runtime::AdcSetting& setting) {
  auto it = tiles_.find(tile_id);
  if (it == tiles_.end()) {
    return absl::FailedPreconditionError(absl::StrCat("sim: ConfigureAdc: tile ", tile_id, " is not written"));
  }
  if (setting.adc_bits < 1 || setting.adc_bits > params_.spec.adc_bits) {
    return absl::InvalidArgumentError(absl::StrCat("sim: ConfigureAdc tile ", tile_id, ": ", setting.adc_bits,
                                                   " ADC bits, chip has 1..", params_.spec.adc_bits));
  }
  if (!std::isfinite(setting.adc_step) || setting.adc_step <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("sim: ConfigureAdc tile ", tile_id, ": ADC step ",
                                                   setting.adc_step, " must be finite and > 0"));
  }
  it->second.adc = setting;
  return absl::OkStatus();
}

absl::Status SimBackend::RunTile(uint32_t tile_id, const runtime::InputBatch& inputs, absl::Span<int16_t> codes) {
  auto it = tiles_.find(tile_id);
  if (it == tiles_.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("sim: RunTile: tile ", tile_id, " is not written (or was overwritten by another tile)"));
  }
  const StoredTile& stored = it->second;
  if (!stored.adc) {
    return absl::FailedPreconditionError(absl::StrCat("sim: RunTile: tile ", tile_id, " has no ADC setting"));
  }
  const runtime::TileImage& image = stored.image;
  const int rows = image.tile.rows();
  const int outputs = image.tile.outputs();
  const int max_bits = MaxInputBits(params_.spec, image.scheme);
  if (inputs.input_bits < 1 || inputs.input_bits > max_bits) {
    return absl::InvalidArgumentError(absl::StrCat("sim: RunTile ", tile_id, ": ", inputs.input_bits,
                                                   "-bit inputs, chip takes 1..", max_bits, " with scheme ",
                                                   runtime::SchemeName(image.scheme)));
  }
  if (inputs.vectors < 0 || inputs.width != rows || (inputs.vectors > 0 && inputs.codes == nullptr)) {
    return absl::InvalidArgumentError(absl::StrCat("sim: RunTile ", tile_id, ": ", inputs.vectors,
                                                   " vectors of width ", inputs.width, ", tile has ", rows, " rows"));
  }
  const int conversions = runtime::ConversionsPerOutput(image.scheme, inputs.input_bits);
  const size_t need = size_t(inputs.vectors) * size_t(outputs) * size_t(conversions);
  if (codes.size() != need) {
    return absl::InvalidArgumentError(absl::StrCat("sim: RunTile ", tile_id, ": code buffer holds ", codes.size(),
                                                   ", need ", need));
  }
  if (rows > 4096) {
    return absl::InvalidArgumentError(absl::StrCat("sim: RunTile ", tile_id, ": ", rows, " rows, at most 4096"));
  }
  const int x_max = (1 << inputs.input_bits) - 1;
  for (size_t i = 0; i < size_t(inputs.vectors) * size_t(rows); ++i) {
    if (inputs.codes[i] > x_max) {
      return absl::InvalidArgumentError(absl::StrCat("sim: RunTile ", tile_id, ": input code ", int(inputs.codes[i]),
                                                     " of vector ", i / size_t(rows), " exceeds ", x_max));
    }
  }
  const int b = stored.adc->adc_bits;
  const double delta = stored.adc->adc_step;
  const AdcRange range = CodeRange(image.scheme, b);
  const runtime::TilePlacement& place = image.tile.placement;
  const int per_weight = runtime::ColumnsPerWeight(image.scheme, image.weight_bits, params_.spec.cell_bits);
  // The physical column converting output o's conversion: the output's first column, the
  // negative half for differential's second conversion (docs/chip-model.md).
  const int per_conversion = image.scheme == runtime::Scheme::kDifferential ? per_weight / 2 : 0;
  std::vector<const ColumnCurve*> curves;  // [outputs][2] when non-ideal
  if (!adc_.ideal()) {
    for (int o = 0; o < outputs; ++o) {
      for (int c = 0; c < 2; ++c) {
        absl::StatusOr<const ColumnCurve*> curve =
            Curve(place.macro, place.column_offset + o * per_weight + c * per_conversion, b);
        if (!curve.ok()) return curve.status();
        curves.push_back(*curve);
      }
    }
  }
  // Noise keys of every (output, conversion, plane) column, the sample folded in per conversion.
  const int planes = image.scheme == runtime::Scheme::kBitSerial ? conversions : 1;
  std::vector<uint64_t> column_keys;  // [outputs][2][planes]
  if (!adc_.ideal()) {
    for (int o = 0; o < outputs; ++o) {
      for (int c = 0; c < 2; ++c) {
        const int column = place.column_offset + o * per_weight + c * per_conversion;
        for (int j = 0; j < planes; ++j) {
          column_keys.push_back(ColumnNoiseKey(adc_.seed(), image.tile.id, uint32_t(column), uint32_t(j)));
        }
      }
    }
  }
  // The ADC of docs/onnx-convention.md 3.1 (ideal: rne of one double division, then clamp) or the column's
  // non-ideal transfer.
  auto adc = [&](int64_t p, int o, int conv, int plane, int m) -> int16_t {
    bool sat = false;
    int code;
    if (adc_.ideal()) {
      code = IdealAdcCode(p, delta, range, &sat);
    } else {
      const uint64_t column_key = column_keys[(size_t(o) * 2 + size_t(conv)) * size_t(planes) + size_t(plane)];
      const uint64_t key = SampleNoiseKey(column_key, inputs.first_sample + uint64_t(m));
      code = curves[size_t(o) * 2 + conv]->Convert(p, delta, range, key, &sat);
    }
    saturations_ += sat;
    return int16_t(code);
  };
  // Partial sums in int32 (vectorizing twice as wide as int64): |q| <= 127, x <= 255 and
  // rows <= 4096 (the chip spec's limit, checked above) keep them below 2^27.
  int16_t* out = codes.data();
  for (int m = 0; m < inputs.vectors; ++m) {
    const uint8_t* x = inputs.codes + size_t(m) * size_t(rows);
    for (int o = 0; o < outputs; ++o) {
      const int8_t* q = image.codes.data() + size_t(o) * size_t(rows);
      switch (image.scheme) {
        case runtime::Scheme::kNative: {
          int32_t p = 0;
          for (int k = 0; k < rows; ++k) p += int32_t(q[k]) * x[k];
          *out++ = adc(p, o, 0, 0, m);
          break;
        }
        case runtime::Scheme::kDifferential: {
          int32_t pos = 0, neg = 0;
          for (int k = 0; k < rows; ++k) {
            const int32_t w = q[k];
            pos += std::max(w, 0) * x[k];
            neg += std::max(-w, 0) * x[k];
          }
          *out++ = adc(pos, o, 0, 0, m);
          *out++ = adc(neg, o, 1, 0, m);
          break;
        }
        case runtime::Scheme::kBitSerial:
          for (int j = 0; j < conversions; ++j) {
            int32_t p = 0;
            for (int k = 0; k < rows; ++k) p += int32_t(q[k]) * ((x[k] >> j) & 1);
            *out++ = adc(p, o, 0, j, m);
          }
          break;
      }
    }
  }
  const int macro = std::clamp(place.macro, 0, params_.spec.macros - 1);
  const bool bank_switch = active_bank_[macro] != place.bank;
  active_bank_[macro] = place.bank;
  cost_.Add(timing_.RunTile(image.tile, image.scheme, inputs.input_bits, b, inputs.vectors, bank_switch));
  const uint64_t rounds = uint64_t(inputs.vectors) * uint64_t(outputs) * uint64_t(conversions);
  conversions_ += rounds;
  macs_ += rounds * uint64_t(rows);
  ++tiles_run_;
  vectors_run_ += uint64_t(inputs.vectors);
  return absl::OkStatus();
}

absl::StatusOr<runtime::Counters> SimBackend::ReadCounters() {
  runtime::Counters counters{
      {"xbar.macs", double(macs_)},
      {"adc.conversions", double(conversions_)},
      {"adc.saturations", double(saturations_)},
      {"tiles.written", double(tiles_written_)},
      {"cells.written", double(cells_written_)},
      {"tiles.run", double(tiles_run_)},
      {"vectors.run", double(vectors_run_)},
  };
  cost_.AddTo(&counters);
  return counters;
}

absl::StatusOr<const ColumnCurve*> SimBackend::Curve(int macro, int column, int bits) {
  const auto key = std::make_tuple(macro, column, bits);
  auto it = curves_.find(key);
  if (it == curves_.end()) {
    absl::StatusOr<ColumnCurve> curve = adc_.Curve(macro, column, bits);
    if (!curve.ok()) return curve.status();
    it = curves_.emplace(key, *std::move(curve)).first;
  }
  return &it->second;
}

absl::Status SimBackend::LoadLayer(const runtime::LayerMapping& layer) {
  layers_.erase(layer.name);
  if (absl::Status s = Backend::LoadLayer(layer); !s.ok()) return s;
  if (!TilesCoverLayerOnce(layer)) return absl::OkStatus();
  absl::StatusOr<std::unique_ptr<FusedLayer>> fused = FusedLayer::Create(layer, &adc_, params_.kernel);
  if (!fused.ok()) return fused.status();
  layers_[layer.name] = LoadedLayer{&layer, *std::move(fused)};
  return absl::OkStatus();
}

bool SimBackend::LayerResident(const runtime::LayerMapping& layer) const {
  for (const runtime::TileSpec& t : layer.tiles) {
    auto it = tiles_.find(t.id);
    if (it == tiles_.end() || !it->second.adc || it->second.adc->adc_bits != layer.adc_bits ||
        it->second.adc->adc_step != layer.adc_step) {
      return false;
    }
  }
  return true;
}

absl::Status SimBackend::RunLayer(const runtime::LayerMapping& layer, const runtime::InputBatch& inputs,
                                  absl::Span<int32_t> sums) {
  auto it = layers_.find(layer.name);
  if (it == layers_.end() || it->second.mapping != &layer || layer.tiles.empty() || !LayerResident(layer)) {
    return Backend::RunLayer(layer, inputs, sums);
  }
  if (inputs.input_bits != layer.input_bits) {
    return absl::InvalidArgumentError(absl::StrCat("layer '", layer.name, "': input batch has ", inputs.input_bits,
                                                   "-bit codes, layer expects ", layer.input_bits));
  }
  KernelStats stats;
  if (absl::Status s = it->second.fused->Run(inputs, sums, &stats); !s.ok()) return s;
  // The same device counters as the tile-by-tile path.
  macs_ += uint64_t(stats.macs);
  conversions_ += uint64_t(stats.conversions);
  saturations_ += uint64_t(stats.saturations);
  tiles_run_ += layer.tiles.size();
  vectors_run_ += uint64_t(inputs.vectors) * layer.tiles.size();
  cost_.Add(timing_.RunLayer(layer, inputs.vectors, &active_bank_));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<runtime::Backend>> OpenSimBackend(const runtime::DeviceUri& uri,
                                                                 const runtime::OpenOptions& options) {
  SimParams params;
  if (!uri.profile_path.empty() || !options.target) {
    const std::string path =
        uri.profile_path.empty() ? runtime::DefaultChipFilePath() : ResolveProfilePath(uri.profile_path);
    absl::StatusOr<proto::ChipFile> file = runtime::ReadChipFile(path);
    if (!file.ok()) return file.status();
    absl::StatusOr<runtime::ChipSpec> spec = runtime::ChipSpecFromProto(file->spec());
    if (!spec.ok()) return spec.status();
    params.spec = *spec;
    const proto::NonIdealityProfile& profile = file->profile();
    params.profile_name = profile.name().empty() ? "ideal" : profile.name();
    params.seed = profile.seed();
    absl::StatusOr<NonIdealityParams> adc = ProfileFromProto(profile, params.spec, path);
    if (!adc.ok()) return adc.status();
    params.profile = *std::move(adc);
  } else {
    params.spec = *options.target;
  }
  if (uri.seed) params.seed = *uri.seed;
  absl::StatusOr<std::unique_ptr<SimBackend>> backend = SimBackend::Create(params);
  if (!backend.ok()) return backend.status();
  return std::unique_ptr<runtime::Backend>(std::move(*backend));
}

}  // namespace pim::sim
