#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace pim::drivers {

// Per-frame probabilities of each fault kind, for one direction of a link.
struct FaultRates {
  double drop = 0;       // the frame vanishes
  double corrupt = 0;    // one bit of the frame flips
  double duplicate = 0;  // the frame arrives twice
  double truncate = 0;   // the frame loses its tail (delimiter kept)
  double stall = 0;      // the link stops for `stall_duration`, then delivers everything held
  double reset = 0;      // the device power-cycles on this frame (only the emulator acts on it)
  absl::Duration stall_duration = absl::Milliseconds(50);

  double total() const { return drop + corrupt + duplicate + truncate + stall + reset; }
};

// Parses "drop=0.01,corrupt=0.01,stall=0.001,stall_ms=200" or "rate=0.01[,kinds=a+b+c]" (the
// total spread evenly over the kinds named, default drop+corrupt+duplicate+truncate+stall), or
// "" / "none". InvalidArgument naming the bad item.
absl::StatusOr<FaultRates> ParseFaultRates(const std::string& text);

struct FaultCounts {
  uint64_t frames = 0;
  uint64_t dropped = 0;
  uint64_t corrupted = 0;
  uint64_t duplicated = 0;
  uint64_t truncated = 0;
  uint64_t stalled = 0;
  uint64_t resets = 0;
};

// Damages a byte stream frame by frame (frames end at 0x00, as the link sends them), with
// seeded, repeatable choices. Used by FaultyTransport (host side) and pim-emu (device side).
// Not thread-safe.
class FaultInjector {
 public:
  struct Chunk {
    std::vector<uint8_t> bytes;
    absl::Duration stall_before = absl::ZeroDuration();  // hold the stream this long first
    bool reset = false;  // the device resets instead of receiving/sending this frame
  };

  FaultInjector(const FaultRates& rates, uint64_t seed);

  // Feeds stream bytes; appends what is to be delivered, in order. Bytes of an incomplete
  // frame are held until its delimiter arrives, up to kMaxHeldBytes (more than the largest
  // encoded frame); a longer run is passed on undamaged as it comes.
  void Feed(absl::Span<const uint8_t> bytes, std::vector<Chunk>* out);
  static constexpr size_t kMaxHeldBytes = size_t(2) << 20;

  const FaultCounts& counts() const { return counts_; }
  const FaultRates& rates() const { return rates_; }

 private:
  void Frame(std::vector<uint8_t> frame, std::vector<Chunk>* out);

  FaultRates rates_;
  std::mt19937_64 rng_;
  std::vector<uint8_t> partial_;
  FaultCounts counts_;
};

}  // namespace pim::drivers
