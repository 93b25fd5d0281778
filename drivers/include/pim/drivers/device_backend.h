#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pim/drivers/link.h"
#include "pim/drivers/transport.h"
#include "pim/runtime/backend.h"

namespace pim::drivers {

struct DeviceBackendOptions {
  LinkOptions link;
  std::string backend = "device";  // ChipInfo::backend: "usb", "serial", "tcp"
  // Read every written tile back (ReadTile) and compare it with what was sent.
  bool verify_writes = false;
  // On a device reset (new session nonce): reopen the link, rewrite every tile and ADC setting
  // written so far, and repeat the interrupted command. When false, stop with a clear error.
  bool reload_on_reset = true;
  int max_reset_recoveries = 64;  // per backend lifetime
};

// A runtime::Backend for a chip behind the link protocol (real silicon or pim-emu) on any
// Transport. Keeps a host copy of every tile and ADC setting so a device reset can be repaired
// transparently (results do not change: noise depends on sample index, not on history).
// LoadLayer and RunLayer keep a window of requests in flight so a slow, long link stays busy;
// RunLayer accumulates on the host exactly as Backend::RunLayer (docs/onnx-convention.md 3.1).
// Owns the Link and the Transport. Not thread-safe (Backend contract).
class DeviceBackend : public runtime::Backend {
 public:
  // Handshakes over `transport` and returns a backend for the chip that answered.
  static absl::StatusOr<std::unique_ptr<DeviceBackend>> Open(std::unique_ptr<Transport> transport,
                                                            const DeviceBackendOptions& options);

  const runtime::ChipInfo& info() const override { return info_; }
  absl::Status WriteTile(const runtime::TileImage& image) override;
  absl::Status ConfigureAdc(uint32_t tile_id, const runtime::AdcSetting& setting) override;
  absl::Status RunTile(uint32_t tile_id, const runtime::InputBatch& inputs,
                       absl::Span<int16_t> codes) override;
  absl::StatusOr<runtime::Counters> ReadCounters() override;
  absl::Status LoadLayer(const runtime::LayerMapping& layer) override;
  absl::Status RunLayer(const runtime::LayerMapping& layer, const runtime::InputBatch& inputs,
                        absl::Span<int32_t> sums) override;

  // Soft-resets the chip (forgets tiles and counters) and the host copy.
  absl::Status ResetDevice();

  const LinkStats& link_stats() const { return link_->stats(); }
  const proto::wire::Limits& limits() const { return limits_; }
  // Bytes of weights, input vectors and ADC codes moved (the useful payload), both directions.
  uint64_t tensor_bytes() const { return tensor_bytes_; }
  int resets_recovered() const { return resets_recovered_; }

 private:
  struct TileCopy {
    runtime::TileImage image;
    std::optional<runtime::AdcSetting> adc;
  };
  // One RunMvm request: vectors [m_begin, m_end) of a tile.
  struct MvmChunk {
    const TileCopy* tile;
    int m_begin;
    int m_end;
  };

  DeviceBackend(std::unique_ptr<Link> link, const DeviceBackendOptions& options);
  absl::Status Handshake();
  template <typename Fn>
  absl::Status WithRecovery(Fn&& fn);
  absl::Status Recover(const absl::Status& cause);
  absl::Status WriteTiles(const std::vector<const TileCopy*>& tiles);
  absl::Status CheckResponse(const proto::wire::Response& response,
                             proto::wire::Response::BodyCase want, const std::string& what) const;
  absl::StatusOr<const TileCopy*> FindTile(uint32_t tile_id) const;
  // Vectors per RunMvm request so both the request and the response fit one frame.
  int VectorsPerRequest(const TileCopy& tile, int input_bits) const;
  proto::wire::Request MakeRunMvm(const TileCopy& tile, const runtime::InputBatch& inputs,
                                  const uint8_t* first_vector, int vectors, uint64_t first_sample,
                                  absl::Status* status);

  std::unique_ptr<Link> link_;
  DeviceBackendOptions options_;
  runtime::ChipInfo info_;
  proto::wire::Limits limits_;
  std::map<uint32_t, TileCopy> tiles_;
  uint64_t tensor_bytes_ = 0;
  int resets_recovered_ = 0;
};

}  // namespace pim::drivers
