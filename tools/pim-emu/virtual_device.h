#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "pim/drivers/device_engine.h"
#include "pim/drivers/fault_injector.h"

namespace pim::emu {

// How the emulated wire behaves: a rate and a one-way latency, per direction or shared.
struct WireModel {
  double bandwidth_bps = 0;                        // bits per second; 0: unlimited
  absl::Duration latency = absl::ZeroDuration();   // one way
  bool half_duplex = false;  // both directions share one medium (USB full speed), else two
};

struct VirtualDeviceOptions {
  WireModel wire;
  drivers::FaultRates to_device;    // applied to frames from the host
  drivers::FaultRates from_device;  // applied to frames to the host
  uint64_t fault_seed = 1;
  // Run the chip (DeviceEngine) on its own thread, as a real chip computes while its link
  // moves the next frames. Results come back through Advance; `wake` (called on the worker
  // thread) tells the caller's loop to call Advance soon. Without it, everything runs inside
  // Advance on the caller's thread.
  std::function<void()> wake;
};

struct VirtualDeviceStats {
  uint64_t resets = 0;
  uint64_t bytes_to_device = 0;
  uint64_t bytes_to_host = 0;
};

// The virtual chip as seen from the wire: a DeviceEngine (the protocol and the chip behind it)
// plus a wire model (bandwidth, latency) and seeded fault injection in both directions,
// including device resets. Driven by the caller's clock and I/O (pim-emu's event loop, or the
// umockdev USB test device): feed what the host sent with Receive, call Advance at NextEvent()
// (and whenever `wake` fires) and send what it returns. Not thread-safe: one caller thread.
class VirtualDevice {
 public:
  VirtualDevice(std::unique_ptr<drivers::DeviceEngine> engine, const VirtualDeviceOptions& options);
  ~VirtualDevice();  // stops the worker

  // Powers the device on (its first RESET_NOTICE goes out through the wire model).
  absl::Status Boot(absl::Time now);

  // Bytes that left the host at `now`.
  void Receive(absl::Span<const uint8_t> bytes, absl::Time now);

  // Runs everything due at or before `now`; appends the bytes that reach the host by then.
  absl::Status Advance(absl::Time now, std::vector<uint8_t>* to_host);

  // When Advance next has something to do (InfiniteFuture when idle).
  absl::Time NextEvent() const;

  // Bytes held inside the device model: on the simulated wire either way and waiting for or
  // produced by the chip. The server stops reading from the host while this is large, so a peer
  // that sends faster than the chip consumes (or never reads) cannot grow it without bound.
  size_t Backlog();

  const VirtualDeviceStats& stats() const { return stats_; }
  const drivers::FaultCounts& to_device_faults() const { return in_faults_.counts(); }
  const drivers::FaultCounts& from_device_faults() const { return out_faults_.counts(); }

 private:
  struct Event {
    absl::Time at;
    std::vector<uint8_t> bytes;
    bool reset = false;
  };
  // When `bytes` sent at `t` arrive at the other end.
  absl::Time Schedule(size_t bytes, absl::Time t, bool to_device);
  void Emit(std::vector<uint8_t> bytes, absl::Time now);
  absl::Status Reset(absl::Time now);
  // Work for the chip: bytes to consume, or a power cycle. Runs inline or on the worker.
  struct Work {
    std::vector<uint8_t> bytes;
    bool reset = false;
  };
  struct Done {
    absl::Time at;
    std::vector<uint8_t> bytes;
    bool reset = false;
    absl::Status status;
  };
  Done Run(Work work);
  void Worker();

  std::unique_ptr<drivers::DeviceEngine> engine_;
  VirtualDeviceOptions options_;
  drivers::FaultInjector in_faults_;
  drivers::FaultInjector out_faults_;
  std::deque<Event> inbound_;
  std::deque<Event> outbound_;
  absl::Time free_[2] = {absl::InfinitePast(), absl::InfinitePast()};  // medium busy until
  absl::Time hold_[2] = {absl::InfinitePast(), absl::InfinitePast()};  // stalled until
  VirtualDeviceStats stats_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Work> work_;
  std::deque<Done> done_;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace pim::emu
