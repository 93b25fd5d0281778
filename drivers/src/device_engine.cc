#include "pim/drivers/device_engine.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "pim/drivers/crc32c.h"
#include "pim/drivers/wire_codec.h"
#include "pim/proto/chip.pb.h"

namespace pim::drivers {

namespace wire = proto::wire;

namespace {

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

wire::Response Error(wire::ErrorCode code, std::string message) {
  wire::Response r;
  r.set_error(code);
  r.set_error_message(std::move(message));
  return r;
}

// A chip's own refusal keeps its text; the code says which kind it is.
wire::Response FromChipStatus(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument: return Error(wire::BAD_REQUEST, std::string(s.message()));
    case absl::StatusCode::kOutOfRange: return Error(wire::OUT_OF_RANGE, std::string(s.message()));
    case absl::StatusCode::kNotFound: return Error(wire::UNKNOWN_TILE, std::string(s.message()));
    case absl::StatusCode::kFailedPrecondition:
      return Error(wire::ADC_NOT_CONFIGURED, std::string(s.message()));
    case absl::StatusCode::kUnimplemented: return Error(wire::UNSUPPORTED, std::string(s.message()));
    default: return Error(wire::INTERNAL, std::string(s.ToString()));
  }
}

// Signed distance from b to a in sequence space (wraps at 2^32).
int64_t SeqDelta(uint32_t a, uint32_t b) { return int64_t(int32_t(a - b)); }

}  // namespace

DeviceEngine::DeviceEngine(ChipFactory factory, DeviceIdentity identity, uint64_t seed)
    : factory_(std::move(factory)),
      identity_(std::move(identity)),
      seed_(seed),
      decoder_(std::max(identity_.max_frame_bytes, kMinFrameBytes)) {}

absl::Status DeviceEngine::Boot(std::vector<uint8_t>* out) {
  absl::StatusOr<std::unique_ptr<runtime::Backend>> chip = factory_();
  if (!chip.ok()) return chip.status();
  chip_ = std::move(*chip);
  ++stats_.boots;
  // A nonce must differ from the previous one even when a restarted process reuses the seed,
  // so real entropy goes in; the seed only keeps two emulators in one test apart.
  const uint32_t previous = nonce_;
  uint64_t mix = SplitMix64(seed_ ^ (uint64_t(std::random_device{}()) << 32) ^ stats_.boots);
  do {
    nonce_ = uint32_t(mix) ^ uint32_t(mix >> 32);
    mix = SplitMix64(mix);
  } while (nonce_ == 0 || nonce_ == previous);
  session_ = false;
  cache_.clear();
  ahead_.clear();
  tiles_.clear();
  decoder_.Clear();
  decoder_.set_max_frame_bytes(std::max(identity_.max_frame_bytes, kMinFrameBytes));
  SendResetNotice(out);
  return absl::OkStatus();
}

void DeviceEngine::OnBytes(absl::Span<const uint8_t> in, std::vector<uint8_t>* out) {
  stats_.bytes_in += in.size();
  decoder_.Feed(in, [&](absl::StatusOr<Frame> frame) {
    ++stats_.frames_in;
    if (!frame.ok()) {
      ++stats_.bad_frames;
      if (session_) SendNak(wire::BAD_FRAME, out);
      return;
    }
    OnFrame(std::move(*frame), out);
  });
}

void DeviceEngine::OnFrame(Frame frame, std::vector<uint8_t>* out) {
  if (frame.type != FrameType::kRequest) {
    ++stats_.bad_frames;
    return;
  }
  // A Hello opens a session whatever the header's nonce; a retransmitted Hello whose answer is
  // still cached is a duplicate, not a new session.
  wire::Request probe;
  const bool parsed = probe.ParseFromString(frame.payload);
  if (parsed && probe.has_hello()) {
    if (session_ && SeqDelta(frame.seq, expected_seq_) < 0) {
      if (auto it = cache_.find(frame.seq); it != cache_.end()) {
        ++stats_.duplicates_answered;
        out->insert(out->end(), it->second.begin(), it->second.end());
        stats_.bytes_out += it->second.size();
        return;
      }
    }
    session_ = true;
    cache_.clear();
    ahead_.clear();
    gap_naked_ = false;
    expected_seq_ = frame.seq;
    Execute(frame.seq, frame.payload, out);
    return;
  }
  if (frame.nonce != nonce_) {
    // A request of a session this device no longer has: it was reset since.
    ++stats_.stale_nonce;
    SendResetNotice(out);
    return;
  }
  if (!session_) {
    // Right nonce but no Hello yet cannot happen with a correct host; say so, do not cache.
    wire::Response r = Error(wire::NO_SESSION, "request before Hello");
    Send(FrameType::kResponse, frame.seq, r.SerializeAsString(), out);
    return;
  }
  const int64_t d = SeqDelta(frame.seq, expected_seq_);
  if (d < 0) {
    if (auto it = cache_.find(frame.seq); it != cache_.end()) {
      ++stats_.duplicates_answered;
      out->insert(out->end(), it->second.begin(), it->second.end());
      stats_.bytes_out += it->second.size();
    }
    return;  // older than the cache: the host has long had its answer
  }
  if (d > 0) {
    // Within the window: keep it and ask for the missing one; further ahead: ignored (protocol 3).
    if (d < int64_t(window_)) {
      ++stats_.out_of_order;
      ahead_.emplace(frame.seq, std::move(frame));
      if (!gap_naked_) SendNak(wire::GAP, out);
    }
    return;
  }
  Execute(frame.seq, frame.payload, out);
  // Requests that were waiting behind the gap run now, in order.
  for (auto it = ahead_.find(expected_seq_); it != ahead_.end(); it = ahead_.find(expected_seq_)) {
    Frame next = std::move(it->second);
    ahead_.erase(it);
    Execute(next.seq, next.payload, out);
  }
  // Anything still buffered sits behind a new gap.
  if (!ahead_.empty() && !gap_naked_) SendNak(wire::GAP, out);
}

void DeviceEngine::Execute(uint32_t seq, const std::string& payload, std::vector<uint8_t>* out) {
  wire::Request request;
  wire::Response response;
  if (!request.ParseFromString(payload)) {
    response = Error(wire::BAD_REQUEST, absl::StrCat("request seq ", seq, ": ", payload.size(),
                                                     " payload bytes are not a wire.Request"));
  } else {
    response = Dispatch(request);
  }
  ++stats_.requests_executed;
  std::string bytes = response.SerializeAsString();
  if (bytes.size() + kFrameOverheadBytes > max_frame_bytes_) {
    bytes = Error(wire::TOO_LARGE, absl::StrCat("response of ", bytes.size() + kFrameOverheadBytes,
                                                " bytes exceeds the ", max_frame_bytes_, "-byte frame limit",
                                                request.has_run_mvm() ? "; send fewer vectors" : ""))
                .SerializeAsString();
  }
  std::vector<uint8_t> frame;
  EncodeFrame(Frame{FrameType::kResponse, seq, nonce_, std::move(bytes)}, &frame);
  out->insert(out->end(), frame.begin(), frame.end());
  stats_.bytes_out += frame.size();
  cache_[seq] = std::move(frame);
  while (cache_.size() > window_) {
    // Evict the oldest in sequence order (the map orders raw values; wrap-around is rare but
    // must not evict the newest).
    auto oldest = cache_.begin();
    for (auto it = cache_.begin(); it != cache_.end(); ++it) {
      if (SeqDelta(it->first, oldest->first) < 0) oldest = it;
    }
    cache_.erase(oldest);
  }
  expected_seq_ = seq + 1;
  gap_naked_ = false;
}

wire::Response DeviceEngine::Dispatch(const wire::Request& request) {
  switch (request.body_case()) {
    case wire::Request::kHello: return Hello(request.hello());
    case wire::Request::kWriteTile: return WriteTile(request.write_tile());
    case wire::Request::kReadTile: return ReadTile(request.read_tile());
    case wire::Request::kConfigureAdc: return ConfigureAdc(request.configure_adc());
    case wire::Request::kRunMvm: return RunMvm(request.run_mvm());
    case wire::Request::kReadCounters: return ReadCounters();
    case wire::Request::kReset: return Reset();
    case wire::Request::BODY_NOT_SET: break;
  }
  return Error(wire::BAD_REQUEST, "request has no body (an unknown command?)");
}

wire::Response DeviceEngine::Hello(const wire::HelloRequest& hello) {
  if (hello.protocol_version() != wire::PROTOCOL_VERSION_CURRENT) {
    max_frame_bytes_ = kMinFrameBytes;
    window_ = 1;
    session_ = false;  // a refused handshake opens no session: later requests get NO_SESSION
    return Error(wire::VERSION_MISMATCH,
                 absl::StrCat("host speaks protocol version ", int(hello.protocol_version()),
                              ", device speaks ", int(wire::PROTOCOL_VERSION_CURRENT)));
  }
  const uint32_t device_frame = std::clamp(identity_.max_frame_bytes, kMinFrameBytes, kMaxFrameBytes);
  const uint32_t host_frame = std::clamp(hello.max_frame_bytes(), kMinFrameBytes, kMaxFrameBytes);
  max_frame_bytes_ = std::min(device_frame, host_frame);
  window_ = std::clamp(std::min(identity_.window, hello.window()), 1u, 1024u);
  decoder_.set_max_frame_bytes(max_frame_bytes_);

  wire::Response r;
  wire::HelloResponse* h = r.mutable_hello();
  h->set_protocol_version(wire::PROTOCOL_VERSION_CURRENT);
  runtime::ChipSpecToProto(chip_->info().spec, h->mutable_chip());
  h->set_serial_number(identity_.serial_number);
  h->set_firmware_version(identity_.firmware_version);
  h->set_session_nonce(nonce_);
  h->set_profile(identity_.profile);
  wire::Limits* l = h->mutable_limits();
  l->set_max_frame_bytes(max_frame_bytes_);
  l->set_window(window_);
  l->set_max_tiles(identity_.max_tiles);
  l->set_link_bytes_per_second(identity_.link_bytes_per_second);
  return r;
}

wire::Response DeviceEngine::WriteTile(const wire::WriteTileRequest& request) {
  absl::StatusOr<runtime::TileImage> image = TileFromWire(request.tile(), request.codes());
  if (!image.ok()) return Error(wire::BAD_REQUEST, std::string(image.status().message()));
  const runtime::ChipSpec& spec = chip_->info().spec;
  const runtime::TilePlacement& p = image->tile.placement;
  const int rows = image->tile.rows();
  if (p.macro >= spec.macros || p.bank >= spec.banks_per_macro || p.row_offset + rows > spec.rows ||
      p.columns < 1 || p.column_offset + p.columns > spec.columns) {
    return Error(wire::OUT_OF_RANGE,
                 absl::StrCat("tile ", image->tile.id, ": macro ", p.macro, " bank ", p.bank,
                              " rows [", p.row_offset, ", ", p.row_offset + rows, ") columns [",
                              p.column_offset, ", ", p.column_offset + p.columns,
                              ") is outside the chip (", spec.macros, " macros x ",
                              spec.banks_per_macro, " banks x ", spec.rows, " rows x ",
                              spec.columns, " columns)"));
  }
  if (image->weight_bits > spec.max_weight_bits) {
    return Error(wire::UNSUPPORTED, absl::StrCat("tile ", image->tile.id, ": ", image->weight_bits,
                                                 "-bit weights, chip allows ", spec.max_weight_bits));
  }
  if (tiles_.count(image->tile.id) == 0 && tiles_.size() >= identity_.max_tiles) {
    return Error(wire::OUT_OF_RANGE, absl::StrCat("tile ", image->tile.id, ": device holds at most ",
                                                  identity_.max_tiles, " tiles"));
  }
  if (absl::Status s = chip_->WriteTile(*image); !s.ok()) return FromChipStatus(s);
  TileState& state = tiles_[image->tile.id];
  state.header = request.tile();
  state.codes = request.codes();
  state.adc_configured = false;
  wire::Response r;
  r.mutable_write_tile()->set_tile_id(image->tile.id);
  r.mutable_write_tile()->set_codes_crc32c(Crc32c(
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(state.codes.data()), state.codes.size())));
  return r;
}

wire::Response DeviceEngine::ReadTile(const wire::ReadTileRequest& request) {
  auto it = tiles_.find(request.tile_id());
  if (it == tiles_.end()) {
    return Error(wire::UNKNOWN_TILE, absl::StrCat("tile ", request.tile_id(), " was never written"));
  }
  wire::Response r;
  *r.mutable_read_tile()->mutable_tile() = it->second.header;
  r.mutable_read_tile()->set_codes(it->second.codes);
  return r;
}

wire::Response DeviceEngine::ConfigureAdc(const wire::ConfigureAdcRequest& request) {
  auto it = tiles_.find(request.tile_id());
  if (it == tiles_.end()) {
    return Error(wire::UNKNOWN_TILE, absl::StrCat("tile ", request.tile_id(), " was never written"));
  }
  const int max_bits = chip_->info().spec.adc_bits;
  if (request.adc_bits() < 1 || int(request.adc_bits()) > max_bits) {
    return Error(wire::UNSUPPORTED, absl::StrCat("tile ", request.tile_id(), ": adc_bits = ",
                                                 request.adc_bits(), ", chip allows 1..", max_bits));
  }
  if (!(std::isfinite(request.adc_step()) && request.adc_step() > 0)) {
    return Error(wire::BAD_REQUEST, absl::StrCat("tile ", request.tile_id(), ": adc_step = ",
                                                 request.adc_step(), ", must be finite and > 0"));
  }
  runtime::AdcSetting setting{int(request.adc_bits()), request.adc_step()};
  if (absl::Status s = chip_->ConfigureAdc(request.tile_id(), setting); !s.ok()) return FromChipStatus(s);
  it->second.adc = setting;
  it->second.adc_configured = true;
  wire::Response r;
  r.mutable_configure_adc()->set_tile_id(request.tile_id());
  return r;
}

wire::Response DeviceEngine::RunMvm(const wire::RunMvmRequest& request) {
  auto it = tiles_.find(request.tile_id());
  if (it == tiles_.end()) {
    return Error(wire::UNKNOWN_TILE, absl::StrCat("tile ", request.tile_id(), " was never written"));
  }
  const TileState& tile = it->second;
  if (!tile.adc_configured) {
    return Error(wire::ADC_NOT_CONFIGURED,
                 absl::StrCat("tile ", request.tile_id(), " has no ADC configuration"));
  }
  const wire::TileHeader& h = tile.header;
  const uint32_t rows = h.k_end() - h.k_begin();
  const uint32_t outputs = h.out_end() - h.out_begin();
  if (request.rows() != rows) {
    return Error(wire::BAD_REQUEST, absl::StrCat("run_mvm tile ", request.tile_id(), ": vectors of ",
                                                 request.rows(), " rows, the tile has ", rows));
  }
  if (request.vectors() == 0) {
    return Error(wire::BAD_REQUEST, absl::StrCat("run_mvm tile ", request.tile_id(), ": 0 vectors"));
  }
  const runtime::ChipSpec& spec = chip_->info().spec;
  const bool serial = h.scheme() == proto::BIT_SERIAL;
  const int max_bits = serial ? spec.max_bit_serial_input_bits : spec.max_input_bits;
  if (int(request.input_bits()) > max_bits) {
    return Error(wire::UNSUPPORTED, absl::StrCat("run_mvm tile ", request.tile_id(), ": ",
                                                 request.input_bits(), "-bit inputs, chip allows ",
                                                 max_bits, serial ? " bit-serial" : ""));
  }
  std::vector<uint8_t> codes_in;
  if (absl::Status s = UnpackInputs(request, &codes_in); !s.ok()) {
    return Error(wire::BAD_REQUEST, std::string(s.message()));
  }
  absl::StatusOr<runtime::Scheme> scheme = SchemeFromProto(h.scheme());
  const int conversions = runtime::ConversionsPerOutput(*scheme, int(request.input_bits()));
  const int code_bytes = CodeBytesForAdcBits(tile.adc.adc_bits);
  const uint64_t n = uint64_t(request.vectors()) * outputs * uint64_t(conversions);
  // Refuse before computing what could never be sent (the payload bound also caps memory).
  if (n * uint64_t(code_bytes) + 64 + kFrameOverheadBytes > max_frame_bytes_) {
    return Error(wire::TOO_LARGE, absl::StrCat("run_mvm tile ", request.tile_id(), ": ", n,
                                               " codes of ", code_bytes, " bytes exceed the ",
                                               max_frame_bytes_, "-byte frame limit"));
  }
  std::vector<int16_t> codes(n);
  runtime::InputBatch batch{codes_in.data(), int(request.vectors()), int(rows),
                            int(request.input_bits()), request.first_sample()};
  if (absl::Status s = chip_->RunTile(request.tile_id(), batch, absl::MakeSpan(codes)); !s.ok()) {
    return FromChipStatus(s);
  }
  wire::Response r;
  wire::RunMvmResponse* m = r.mutable_run_mvm();
  m->set_tile_id(request.tile_id());
  m->set_vectors(request.vectors());
  m->set_outputs(outputs);
  m->set_conversions(uint32_t(conversions));
  m->set_code_bytes(uint32_t(code_bytes));
  PackCodes(codes, code_bytes, m->mutable_codes());
  return r;
}

wire::Response DeviceEngine::ReadCounters() {
  absl::StatusOr<runtime::Counters> counters = chip_->ReadCounters();
  if (!counters.ok()) return FromChipStatus(counters.status());
  wire::Response r;
  auto* map = r.mutable_read_counters()->mutable_counters();
  for (const auto& [name, value] : *counters) (*map)[name] = value;
  (*map)["device.link.bytes_in"] = double(stats_.bytes_in);
  (*map)["device.link.bytes_out"] = double(stats_.bytes_out);
  (*map)["device.link.bad_frames"] = double(stats_.bad_frames);
  (*map)["device.link.duplicates"] = double(stats_.duplicates_answered);
  return r;
}

wire::Response DeviceEngine::Reset() {
  absl::StatusOr<std::unique_ptr<runtime::Backend>> chip = factory_();
  if (!chip.ok()) return FromChipStatus(chip.status());
  chip_ = std::move(*chip);
  tiles_.clear();
  wire::Response r;
  r.mutable_reset();
  return r;
}

void DeviceEngine::Send(FrameType type, uint32_t seq, const std::string& payload,
                        std::vector<uint8_t>* out) {
  const size_t before = out->size();
  EncodeFrame(Frame{type, seq, nonce_, payload}, out);
  stats_.bytes_out += out->size() - before;
}

void DeviceEngine::SendNak(wire::NakReason reason, std::vector<uint8_t>* out) {
  wire::Nak nak;
  nak.set_expected_seq(expected_seq_);
  nak.set_reason(reason);
  ++stats_.naks_sent;
  if (reason == wire::GAP) gap_naked_ = true;
  Send(FrameType::kNak, 0, nak.SerializeAsString(), out);
}

void DeviceEngine::SendResetNotice(std::vector<uint8_t>* out) {
  wire::ResetNotice notice;
  notice.set_session_nonce(nonce_);
  Send(FrameType::kResetNotice, 0, notice.SerializeAsString(), out);
}

}  // namespace pim::drivers
