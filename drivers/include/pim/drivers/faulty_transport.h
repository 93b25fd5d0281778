#pragma once

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "pim/drivers/fault_injector.h"
#include "pim/drivers/transport.h"

namespace pim::drivers {

// Wraps a Transport and damages whole frames in each direction at seeded rates (drop, corrupt,
// duplicate, truncate, stall; `reset` is ignored here: only a device can reset). Stalled bytes
// are held, not lost, and released by later Write/Read calls once their time has come, so the
// caller's timeouts still bound every call. Owns the inner transport. Not thread-safe.
class FaultyTransport : public Transport {
 public:
  FaultyTransport(std::unique_ptr<Transport> inner, const FaultRates& to_device,
                  const FaultRates& from_device, uint64_t seed);

  absl::Status Write(absl::Span<const uint8_t> bytes, absl::Duration timeout) override;
  absl::StatusOr<size_t> Read(absl::Span<uint8_t> buffer, absl::Duration timeout) override;
  const std::string& name() const override { return name_; }

  const FaultCounts& to_device_counts() const { return tx_.counts(); }
  const FaultCounts& from_device_counts() const { return rx_.counts(); }

 private:
  struct Held {
    absl::Time release;
    std::vector<uint8_t> bytes;
  };
  // Queues injector output; a stall delays this chunk and everything after it.
  static void Enqueue(std::vector<FaultInjector::Chunk>& chunks, absl::Time now,
                      absl::Time* hold_until, std::deque<Held>* queue);
  absl::Status FlushTx(absl::Duration timeout);

  std::unique_ptr<Transport> inner_;
  std::string name_;
  FaultInjector tx_;
  FaultInjector rx_;
  absl::Time tx_hold_until_ = absl::InfinitePast();
  absl::Time rx_hold_until_ = absl::InfinitePast();
  std::deque<Held> tx_queue_;
  std::deque<Held> rx_queue_;
};

}  // namespace pim::drivers
