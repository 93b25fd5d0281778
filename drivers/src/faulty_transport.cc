#include "pim/drivers/faulty_transport.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace pim::drivers {

FaultyTransport::FaultyTransport(std::unique_ptr<Transport> inner, const FaultRates& to_device,
                                 const FaultRates& from_device, uint64_t seed)
    : inner_(std::move(inner)),
      name_(absl::StrCat("faulty(", inner_->name(), ")")),
      tx_(to_device, seed * 2 + 1),
      rx_(from_device, seed * 2 + 2) {}

void FaultyTransport::Enqueue(std::vector<FaultInjector::Chunk>& chunks, absl::Time now,
                              absl::Time* hold_until, std::deque<Held>* queue) {
  for (FaultInjector::Chunk& chunk : chunks) {
    if (chunk.stall_before > absl::ZeroDuration()) {
      *hold_until = std::max(*hold_until, now) + chunk.stall_before;
    }
    queue->push_back(Held{std::max(*hold_until, now), std::move(chunk.bytes)});
  }
  chunks.clear();
}

absl::Status FaultyTransport::FlushTx(absl::Duration timeout) {
  const absl::Time now = absl::Now();
  while (!tx_queue_.empty() && tx_queue_.front().release <= now) {
    if (absl::Status s = inner_->Write(tx_queue_.front().bytes, timeout); !s.ok()) return s;
    tx_queue_.pop_front();
  }
  return absl::OkStatus();
}

absl::Status FaultyTransport::Write(absl::Span<const uint8_t> bytes, absl::Duration timeout) {
  std::vector<FaultInjector::Chunk> chunks;
  tx_.Feed(bytes, &chunks);
  Enqueue(chunks, absl::Now(), &tx_hold_until_, &tx_queue_);
  return FlushTx(timeout);
}

absl::StatusOr<size_t> FaultyTransport::Read(absl::Span<uint8_t> buffer, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::vector<uint8_t> scratch(std::max<size_t>(buffer.size(), 4096));
  std::vector<FaultInjector::Chunk> chunks;
  while (true) {
    if (absl::Status s = FlushTx(timeout); !s.ok()) return s;
    const absl::Time now = absl::Now();
    if (!rx_queue_.empty() && rx_queue_.front().release <= now) {
      Held& held = rx_queue_.front();
      const size_t n = std::min(buffer.size(), held.bytes.size());
      std::memcpy(buffer.data(), held.bytes.data(), n);
      held.bytes.erase(held.bytes.begin(), held.bytes.begin() + ptrdiff_t(n));
      if (held.bytes.empty()) rx_queue_.pop_front();
      return n;
    }
    if (now >= deadline) return size_t{0};
    absl::Time wake = deadline;
    if (!tx_queue_.empty()) wake = std::min(wake, tx_queue_.front().release);
    if (!rx_queue_.empty()) wake = std::min(wake, rx_queue_.front().release);
    absl::StatusOr<size_t> n = inner_->Read(absl::MakeSpan(scratch), std::max(wake - now, absl::ZeroDuration()));
    if (!n.ok()) return n.status();
    if (*n > 0) {
      rx_.Feed(absl::MakeConstSpan(scratch.data(), *n), &chunks);
      Enqueue(chunks, absl::Now(), &rx_hold_until_, &rx_queue_);
    }
  }
}

}  // namespace pim::drivers
