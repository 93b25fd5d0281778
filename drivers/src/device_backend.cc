#include "pim/drivers/device_backend.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "pim/runtime/tile_accumulation.h"
#include "pim/drivers/crc32c.h"
#include "pim/drivers/wire_codec.h"
#include "pim/proto/chip.pb.h"

namespace pim::drivers {

namespace wire = proto::wire;
using runtime::Scheme;

namespace {

absl::StatusCode CodeFor(wire::ErrorCode code) {
  switch (code) {
    case wire::BAD_REQUEST: return absl::StatusCode::kInvalidArgument;
    case wire::UNKNOWN_TILE: return absl::StatusCode::kNotFound;
    case wire::ADC_NOT_CONFIGURED:
    case wire::VERSION_MISMATCH:
    case wire::NO_SESSION: return absl::StatusCode::kFailedPrecondition;
    case wire::OUT_OF_RANGE: return absl::StatusCode::kOutOfRange;
    case wire::UNSUPPORTED: return absl::StatusCode::kUnimplemented;
    case wire::TOO_LARGE: return absl::StatusCode::kResourceExhausted;
    default: return absl::StatusCode::kInternal;
  }
}

// Bytes a request or response carries besides its tensor bytes: message tags, lengths and
// small fields. Generous, so a chunk sized with it always fits.
constexpr size_t kMessageSlack = 96;

}  // namespace

DeviceBackend::DeviceBackend(std::unique_ptr<Link> link, const DeviceBackendOptions& options)
    : link_(std::move(link)), options_(options) {}

absl::StatusOr<std::unique_ptr<DeviceBackend>> DeviceBackend::Open(
    std::unique_ptr<Transport> transport, const DeviceBackendOptions& options) {
  auto link = std::make_unique<Link>(std::move(transport), options.link);
  std::unique_ptr<DeviceBackend> backend(new DeviceBackend(std::move(link), options));
  if (absl::Status s = backend->Handshake(); !s.ok()) return s;
  return backend;
}

absl::Status DeviceBackend::Handshake() {
  absl::StatusOr<wire::HelloResponse> hello = link_->Open();
  if (!hello.ok()) return hello.status();
  absl::StatusOr<runtime::ChipSpec> spec = runtime::ChipSpecFromProto(hello->chip());
  if (!spec.ok()) {
    return absl::DataLossError(absl::StrCat(link_->name(), ": handshake chip spec: ", spec.status().message()));
  }
  if (!info_.spec.name.empty() &&
      (spec->name != info_.spec.name || spec->rows != info_.spec.rows ||
       spec->columns != info_.spec.columns || spec->macros != info_.spec.macros ||
       hello->serial_number() != info_.serial_number)) {
    return absl::FailedPreconditionError(absl::StrCat(
        link_->name(), ": after a reset the device is chip '", spec->name, "' serial '",
        hello->serial_number(), "', before it was '", info_.spec.name, "' serial '",
        info_.serial_number, "'; not reloading weights into a different chip"));
  }
  info_.spec = *spec;
  info_.backend = options_.backend;
  info_.serial_number = hello->serial_number();
  info_.firmware_version = hello->firmware_version();
  limits_ = hello->limits();
  return absl::OkStatus();
}

absl::Status DeviceBackend::CheckResponse(const wire::Response& response,
                                          wire::Response::BodyCase want,
                                          const std::string& what) const {
  if (response.error() != wire::OK) {
    const std::string& code = wire::ErrorCode_Name(response.error());
    return absl::Status(CodeFor(response.error()),
                        absl::StrCat(link_->name(), ": device refused ", what, " (",
                                     code.empty() ? absl::StrCat("unknown error code ", int(response.error())) : code,
                                     "): ", response.error_message()));
  }
  if (response.body_case() != want) {
    auto body_name = [](wire::Response::BodyCase c) {
      const google::protobuf::FieldDescriptor* f = wire::Response::descriptor()->FindFieldByNumber(int(c));
      return f != nullptr ? f->name() : absl::StrCat("field ", int(c));
    };
    return absl::DataLossError(absl::StrCat(link_->name(), ": ", what, " answered with a ",
                                            body_name(response.body_case()), " body, expected ", body_name(want)));
  }
  return absl::OkStatus();
}

template <typename Fn>
absl::Status DeviceBackend::WithRecovery(Fn&& fn) {
  absl::Status s = fn();
  while (IsDeviceReset(s)) {
    if (absl::Status r = Recover(s); !r.ok()) {
      if (IsDeviceReset(r)) {
        s = r;  // reset again while reloading: start over
        continue;
      }
      return r;
    }
    s = fn();
  }
  return s;
}

absl::Status DeviceBackend::Recover(const absl::Status& cause) {
  if (!options_.reload_on_reset) {
    return absl::AbortedError(absl::StrCat(cause.message(),
                                           "; stopping (reloading after a reset is disabled)"));
  }
  if (resets_recovered_ >= options_.max_reset_recoveries) {
    return absl::AbortedError(absl::StrCat(cause.message(), "; giving up after ", resets_recovered_,
                                           " recoveries"));
  }
  ++resets_recovered_;
  if (absl::Status s = Handshake(); !s.ok()) return s;
  std::vector<const TileCopy*> all;
  all.reserve(tiles_.size());
  for (const auto& [id, copy] : tiles_) all.push_back(&copy);
  return WriteTiles(all);
}

absl::StatusOr<const DeviceBackend::TileCopy*> DeviceBackend::FindTile(uint32_t tile_id) const {
  auto it = tiles_.find(tile_id);
  if (it == tiles_.end()) {
    return absl::NotFoundError(absl::StrCat(link_->name(), ": tile ", tile_id,
                                            " was not written through this backend"));
  }
  return &it->second;
}

absl::Status DeviceBackend::WriteTiles(const std::vector<const TileCopy*>& tiles) {
  // Each tile is a WriteTile, then (when set) a ConfigureAdc; request i maps to (tile, step).
  std::vector<std::pair<const TileCopy*, bool>> steps;
  for (const TileCopy* t : tiles) {
    steps.emplace_back(t, false);
    if (t->adc.has_value()) steps.emplace_back(t, true);
  }
  absl::Status s = link_->Transact(
      steps.size(),
      [&](size_t i) -> absl::StatusOr<wire::Request> {
        wire::Request r;
        const auto& [tile, adc] = steps[i];
        if (adc) {
          r.mutable_configure_adc()->set_tile_id(tile->image.tile.id);
          r.mutable_configure_adc()->set_adc_bits(uint32_t(tile->adc->adc_bits));
          r.mutable_configure_adc()->set_adc_step(tile->adc->adc_step);
        } else {
          TileToWire(tile->image, r.mutable_write_tile());
          tensor_bytes_ += tile->image.codes.size();
        }
        return r;
      },
      [&](size_t i, const wire::Response& response) -> absl::Status {
        const auto& [tile, adc] = steps[i];
        const uint32_t id = tile->image.tile.id;
        if (adc) {
          return CheckResponse(response, wire::Response::kConfigureAdc,
                               absl::StrCat("ConfigureAdc of tile ", id));
        }
        if (absl::Status c = CheckResponse(response, wire::Response::kWriteTile,
                                           absl::StrCat("WriteTile of tile ", id));
            !c.ok()) {
          return c;
        }
        const uint32_t want = Crc32c(absl::MakeConstSpan(
            reinterpret_cast<const uint8_t*>(tile->image.codes.data()), tile->image.codes.size()));
        if (response.write_tile().codes_crc32c() != want) {
          return absl::DataLossError(absl::StrCat(link_->name(), ": tile ", id,
                                                  ": device stored weights with CRC ",
                                                  response.write_tile().codes_crc32c(),
                                                  ", host sent CRC ", want));
        }
        return absl::OkStatus();
      });
  if (!s.ok() || !options_.verify_writes) return s;
  return link_->Transact(
      tiles.size(),
      [&](size_t i) -> absl::StatusOr<wire::Request> {
        wire::Request r;
        r.mutable_read_tile()->set_tile_id(tiles[i]->image.tile.id);
        return r;
      },
      [&](size_t i, const wire::Response& response) -> absl::Status {
        const runtime::TileImage& image = tiles[i]->image;
        if (absl::Status c = CheckResponse(response, wire::Response::kReadTile,
                                           absl::StrCat("ReadTile of tile ", image.tile.id));
            !c.ok()) {
          return c;
        }
        tensor_bytes_ += response.read_tile().codes().size();
        const std::string& got = response.read_tile().codes();
        if (got.size() != image.codes.size() ||
            !std::equal(got.begin(), got.end(), reinterpret_cast<const char*>(image.codes.data()))) {
          size_t at = 0;
          while (at < got.size() && at < image.codes.size() && int8_t(got[at]) == image.codes[at]) ++at;
          return absl::DataLossError(absl::StrCat(link_->name(), ": verify of tile ", image.tile.id,
                                                  " failed: read back ", got.size(), " codes, first ",
                                                  "difference at code ", at, " of ", image.codes.size()));
        }
        return absl::OkStatus();
      });
}

absl::Status DeviceBackend::WriteTile(const runtime::TileImage& image) {
  const size_t want = size_t(std::max(image.tile.rows(), 0)) * size_t(std::max(image.tile.outputs(), 0));
  if (image.tile.rows() <= 0 || image.tile.outputs() <= 0 || image.codes.size() != want) {
    return absl::InvalidArgumentError(absl::StrCat("tile ", image.tile.id, ": ", image.codes.size(),
                                                   " codes for ", image.tile.outputs(), " outputs x ",
                                                   image.tile.rows(), " rows"));
  }
  TileCopy copy{image, std::nullopt};
  absl::Status s = WithRecovery([&] { return WriteTiles({&copy}); });
  if (s.ok()) tiles_[image.tile.id] = std::move(copy);
  return s;
}

absl::Status DeviceBackend::ConfigureAdc(uint32_t tile_id, const runtime::AdcSetting& setting) {
  absl::StatusOr<const TileCopy*> tile = FindTile(tile_id);
  if (!tile.ok()) return tile.status();
  absl::Status s = WithRecovery([&]() -> absl::Status {
    wire::Request r;
    r.mutable_configure_adc()->set_tile_id(tile_id);
    r.mutable_configure_adc()->set_adc_bits(uint32_t(setting.adc_bits));
    r.mutable_configure_adc()->set_adc_step(setting.adc_step);
    absl::StatusOr<wire::Response> response = link_->Call(r);
    if (!response.ok()) return response.status();
    return CheckResponse(*response, wire::Response::kConfigureAdc,
                         absl::StrCat("ConfigureAdc of tile ", tile_id));
  });
  if (s.ok()) tiles_[tile_id].adc = setting;
  return s;
}

absl::Status DeviceBackend::LoadLayer(const runtime::LayerMapping& layer) {
  const size_t expected = size_t(std::max(layer.out_channels, 0)) * size_t(std::max(layer.reduction, 0));
  if (layer.out_channels <= 0 || layer.reduction <= 0 || layer.weight_codes.size() != expected) {
    return absl::InvalidArgumentError(absl::StrCat("layer '", layer.name, "': ", layer.weight_codes.size(),
                                                   " weight codes for O=", layer.out_channels,
                                                   " x K=", layer.reduction));
  }
  std::vector<TileCopy> copies;
  copies.reserve(layer.tiles.size());
  for (const runtime::TileSpec& tile : layer.tiles) {
    if (tile.k_begin < 0 || tile.k_begin >= tile.k_end || tile.k_end > layer.reduction ||
        tile.out_begin < 0 || tile.out_begin >= tile.out_end || tile.out_end > layer.out_channels) {
      return absl::InvalidArgumentError(absl::StrCat(
          "layer '", layer.name, "' tile ", tile.id, ": rows [", tile.k_begin, ", ", tile.k_end,
          ") x outputs [", tile.out_begin, ", ", tile.out_end, ") outside the ",
          layer.out_channels, " x ", layer.reduction, " weight matrix"));
    }
    TileCopy copy;
    copy.image.tile = tile;
    copy.image.scheme = layer.scheme;
    copy.image.weight_bits = layer.weight_bits;
    copy.image.codes.reserve(size_t(tile.outputs()) * size_t(tile.rows()));
    for (int o = tile.out_begin; o < tile.out_end; ++o) {
      const int8_t* row = layer.weight_codes.data() + size_t(o) * size_t(layer.reduction);
      copy.image.codes.insert(copy.image.codes.end(), row + tile.k_begin, row + tile.k_end);
    }
    copy.adc = runtime::AdcSetting{layer.adc_bits, layer.adc_step};
    copies.push_back(std::move(copy));
  }
  std::vector<const TileCopy*> pointers;
  for (const TileCopy& c : copies) pointers.push_back(&c);
  absl::Status s = WithRecovery([&] { return WriteTiles(pointers); });
  if (!s.ok()) return s;
  for (TileCopy& c : copies) tiles_[c.image.tile.id] = std::move(c);
  return absl::OkStatus();
}

int DeviceBackend::VectorsPerRequest(const TileCopy& tile, int input_bits) const {
  const size_t room = link_->max_message_bytes() > kMessageSlack ? link_->max_message_bytes() - kMessageSlack : 1;
  const int adc_bits = tile.adc.has_value() ? tile.adc->adc_bits : info_.spec.adc_bits;
  const size_t out_bytes = size_t(tile.image.tile.outputs()) *
                           size_t(runtime::ConversionsPerOutput(tile.image.scheme, input_bits)) *
                           size_t(CodeBytesForAdcBits(adc_bits));
  const size_t in_bits = size_t(tile.image.tile.rows()) * size_t(std::max(input_bits, 1));
  const size_t by_out = room / std::max<size_t>(out_bytes, 1);
  const size_t by_in = (room * 8) / std::max<size_t>(in_bits, 1);
  return int(std::clamp<size_t>(std::min(by_out, by_in), 1, 1u << 20));
}

wire::Request DeviceBackend::MakeRunMvm(const TileCopy& tile, const runtime::InputBatch& inputs,
                                        const uint8_t* first_vector, int vectors,
                                        uint64_t first_sample, absl::Status* status) {
  wire::Request r;
  wire::RunMvmRequest* m = r.mutable_run_mvm();
  const int rows = tile.image.tile.rows();
  m->set_tile_id(tile.image.tile.id);
  m->set_vectors(uint32_t(vectors));
  m->set_rows(uint32_t(rows));
  m->set_input_bits(uint32_t(inputs.input_bits));
  m->set_first_sample(first_sample);
  // A bit-serial chip consumes planes; a bit-parallel DAC consumes whole codes.
  m->set_encoding(tile.image.scheme == Scheme::kBitSerial ? wire::BIT_PLANES : wire::PACKED);
  runtime::InputBatch chunk{first_vector, vectors, rows, inputs.input_bits, first_sample};
  *status = PackInputs(chunk, m->encoding(), m->mutable_inputs());
  tensor_bytes_ += m->inputs().size();
  return r;
}

absl::Status DeviceBackend::RunTile(uint32_t tile_id, const runtime::InputBatch& inputs,
                                    absl::Span<int16_t> codes) {
  absl::StatusOr<const TileCopy*> found = FindTile(tile_id);
  if (!found.ok()) return found.status();
  const TileCopy& tile = **found;
  const int rows = tile.image.tile.rows();
  const int outputs = tile.image.tile.outputs();
  const int conversions = runtime::ConversionsPerOutput(tile.image.scheme, inputs.input_bits);
  if (inputs.vectors < 0 || inputs.width != rows || (inputs.vectors > 0 && inputs.codes == nullptr)) {
    return absl::InvalidArgumentError(absl::StrCat("tile ", tile_id, ": ", inputs.vectors,
                                                   " vectors of width ", inputs.width,
                                                   ", the tile has ", rows, " rows"));
  }
  const size_t per_vector = size_t(outputs) * size_t(conversions);
  if (codes.size() != size_t(inputs.vectors) * per_vector) {
    return absl::InvalidArgumentError(absl::StrCat("tile ", tile_id, ": codes buffer holds ", codes.size(),
                                                   ", need ", inputs.vectors, " x ", outputs, " x ",
                                                   conversions));
  }
  const int step = VectorsPerRequest(tile, inputs.input_bits);
  const size_t requests = (size_t(inputs.vectors) + size_t(step) - 1) / size_t(step);
  const int adc_bits = tile.adc.has_value() ? tile.adc->adc_bits : info_.spec.adc_bits;
  const bool signed_codes = tile.image.scheme != Scheme::kDifferential;
  return WithRecovery([&] {
    return link_->Transact(
        requests,
        [&](size_t i) -> absl::StatusOr<wire::Request> {
          const int m0 = int(i) * step;
          const int count = std::min(step, inputs.vectors - m0);
          absl::Status s;
          wire::Request r = MakeRunMvm(tile, inputs, inputs.codes + size_t(m0) * size_t(rows), count,
                                       inputs.first_sample + uint64_t(m0), &s);
          if (!s.ok()) return s;
          return r;
        },
        [&](size_t i, const wire::Response& response) -> absl::Status {
          const std::string what = absl::StrCat("RunMvm of tile ", tile_id);
          if (absl::Status c = CheckResponse(response, wire::Response::kRunMvm, what); !c.ok()) return c;
          const int m0 = int(i) * step;
          const int count = std::min(step, inputs.vectors - m0);
          tensor_bytes_ += response.run_mvm().codes().size();
          absl::Status u = UnpackCodes(response.run_mvm(), tile_id, uint32_t(count), uint32_t(outputs),
                                       uint32_t(conversions), adc_bits, signed_codes,
                                       codes.subspan(size_t(m0) * per_vector, size_t(count) * per_vector));
          if (!u.ok()) return absl::Status(u.code(), absl::StrCat(link_->name(), ": ", u.message()));
          return u;
        });
  });
}

absl::Status DeviceBackend::RunLayer(const runtime::LayerMapping& layer,
                                     const runtime::InputBatch& inputs, absl::Span<int32_t> sums) {
  if (absl::Status s = runtime::CheckLayerBatch(layer, inputs, sums.size()); !s.ok()) return s;
  const int m_count = inputs.vectors;
  std::vector<MvmChunk> chunks;
  for (const runtime::TileSpec& spec : layer.tiles) {
    absl::StatusOr<const TileCopy*> tile = FindTile(spec.id);
    if (!tile.ok()) {
      return absl::FailedPreconditionError(absl::StrCat("layer '", layer.name, "': tile ", spec.id,
                                                        " is not loaded (LoadLayer first)"));
    }
    const int step = VectorsPerRequest(**tile, inputs.input_bits);
    for (int m0 = 0; m0 < m_count; m0 += step) chunks.push_back({*tile, m0, std::min(m_count, m0 + step)});
  }
  const int conversions = runtime::ConversionsPerOutput(layer.scheme, inputs.input_bits);
  std::vector<uint8_t> gathered;
  std::vector<int16_t> codes;
  return WithRecovery([&] {
    std::fill(sums.begin(), sums.end(), 0);
    return link_->Transact(
        chunks.size(),
        [&](size_t i) -> absl::StatusOr<wire::Request> {
          const MvmChunk& c = chunks[i];
          const runtime::TileSpec& t = c.tile->image.tile;
          // The device sees only the tile's rows: gather them into a contiguous block.
          runtime::GatherTileInputs(inputs, t, c.m_begin, c.m_end, &gathered);
          absl::Status s;
          wire::Request r = MakeRunMvm(*c.tile, inputs, gathered.data(), c.m_end - c.m_begin,
                                       inputs.first_sample + uint64_t(c.m_begin), &s);
          if (!s.ok()) return s;
          return r;
        },
        [&](size_t i, const wire::Response& response) -> absl::Status {
          const MvmChunk& c = chunks[i];
          const runtime::TileSpec& t = c.tile->image.tile;
          const int vectors = c.m_end - c.m_begin;
          const std::string what = absl::StrCat("RunMvm of tile ", t.id, " (layer '", layer.name, "')");
          if (absl::Status s = CheckResponse(response, wire::Response::kRunMvm, what); !s.ok()) return s;
          codes.resize(size_t(vectors) * size_t(t.outputs()) * size_t(conversions));
          if (absl::Status s = UnpackCodes(response.run_mvm(), t.id, uint32_t(vectors),
                                           uint32_t(t.outputs()), uint32_t(conversions), layer.adc_bits,
                                           layer.scheme != runtime::Scheme::kDifferential, absl::MakeSpan(codes));
              !s.ok()) {
            return absl::Status(s.code(), absl::StrCat(link_->name(), ": ", s.message()));
          }
          tensor_bytes_ += response.run_mvm().codes().size();
          runtime::AccumulateTileCodes(layer.scheme, conversions, t, layer.out_channels, c.m_begin,
                                       c.m_end, codes.data(), runtime::RawCodeValue, sums.data());
          return absl::OkStatus();
        });
  });
}

absl::StatusOr<runtime::Counters> DeviceBackend::ReadCounters() {
  runtime::Counters counters;
  absl::Status s = WithRecovery([&]() -> absl::Status {
    wire::Request r;
    r.mutable_read_counters();
    absl::StatusOr<wire::Response> response = link_->Call(r);
    if (!response.ok()) return response.status();
    if (absl::Status c = CheckResponse(*response, wire::Response::kReadCounters, "ReadCounters"); !c.ok()) {
      return c;
    }
    counters.clear();
    for (const auto& [name, value] : response->read_counters().counters()) counters[name] = value;
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  const LinkStats& l = link_->stats();
  counters["link.bytes"] = double(l.bytes_in + l.bytes_out);
  counters["link.bytes_out"] = double(l.bytes_out);
  counters["link.bytes_in"] = double(l.bytes_in);
  counters["link.tensor_bytes"] = double(tensor_bytes_);
  counters["link.requests"] = double(l.requests);
  counters["link.retransmissions"] = double(l.retransmissions);
  counters["link.fast_retransmissions"] = double(l.fast_retransmissions);
  counters["link.bad_frames"] = double(l.bad_frames);
  counters["link.naks"] = double(l.naks);
  counters["link.device_resets"] = double(l.device_resets);
  return counters;
}

absl::Status DeviceBackend::ResetDevice() {
  absl::Status s = WithRecovery([&]() -> absl::Status {
    wire::Request r;
    r.mutable_reset();
    absl::StatusOr<wire::Response> response = link_->Call(r);
    if (!response.ok()) return response.status();
    return CheckResponse(*response, wire::Response::kReset, "Reset");
  });
  if (s.ok()) tiles_.clear();
  return s;
}

}  // namespace pim::drivers
