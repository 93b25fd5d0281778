#include "virtual_device.h"

#include <algorithm>
#include <utility>

namespace pim::emu {

VirtualDevice::VirtualDevice(std::unique_ptr<drivers::DeviceEngine> engine, const VirtualDeviceOptions& options)
    : engine_(std::move(engine)),
      options_(options),
      in_faults_(options.to_device, options.fault_seed * 2 + 1),
      out_faults_(options.from_device, options.fault_seed * 2 + 2) {
  if (options_.wake) worker_ = std::thread([this] { Worker(); });
}

VirtualDevice::~VirtualDevice() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

VirtualDevice::Done VirtualDevice::Run(Work work) {
  Done done;
  done.reset = work.reset;
  if (work.reset) {
    done.status = engine_->Boot(&done.bytes);
  } else {
    engine_->OnBytes(work.bytes, &done.bytes);
  }
  done.at = absl::Now();
  return done;
}

void VirtualDevice::Worker() {
  while (true) {
    Work work;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !work_.empty(); });
      if (stop_) return;
      work = std::move(work_.front());
      work_.pop_front();
    }
    Done done = Run(std::move(work));
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_.push_back(std::move(done));
    }
    options_.wake();
  }
}

absl::Status VirtualDevice::Boot(absl::Time now) {
  std::vector<uint8_t> out;
  if (absl::Status s = engine_->Boot(&out); !s.ok()) return s;
  Emit(std::move(out), now);
  return absl::OkStatus();
}

absl::Time VirtualDevice::Schedule(size_t bytes, absl::Time t, bool to_device) {
  const WireModel& w = options_.wire;
  if (w.bandwidth_bps <= 0) return t + w.latency;
  absl::Time& free = free_[w.half_duplex ? 0 : (to_device ? 0 : 1)];
  const absl::Time start = std::max(t, free);
  free = start + absl::Seconds(double(bytes) * 8.0 / w.bandwidth_bps);
  return free + w.latency;
}

void VirtualDevice::Receive(absl::Span<const uint8_t> bytes, absl::Time now) {
  stats_.bytes_to_device += bytes.size();
  std::vector<drivers::FaultInjector::Chunk> chunks;
  in_faults_.Feed(bytes, &chunks);
  for (auto& chunk : chunks) {
    absl::Time t = now;
    if (chunk.stall_before > absl::ZeroDuration()) hold_[0] = std::max(hold_[0], now) + chunk.stall_before;
    t = std::max(t, hold_[0]);
    const absl::Time at = Schedule(chunk.bytes.size(), t, /*to_device=*/true);
    inbound_.push_back(Event{at, chunk.reset ? std::vector<uint8_t>{} : std::move(chunk.bytes), chunk.reset});
  }
}

void VirtualDevice::Emit(std::vector<uint8_t> bytes, absl::Time now) {
  std::vector<drivers::FaultInjector::Chunk> chunks;
  out_faults_.Feed(bytes, &chunks);
  for (auto& chunk : chunks) {
    if (chunk.reset) {
      // The device dies instead of sending this frame; it happens now, not on the wire.
      outbound_.push_back(Event{now, {}, true});
      continue;
    }
    if (chunk.stall_before > absl::ZeroDuration()) hold_[1] = std::max(hold_[1], now) + chunk.stall_before;
    const absl::Time t = std::max(now, hold_[1]);
    const absl::Time at = Schedule(chunk.bytes.size(), t, /*to_device=*/false);
    outbound_.push_back(Event{at, std::move(chunk.bytes), false});
  }
}

absl::Status VirtualDevice::Reset(absl::Time now) {
  ++stats_.resets;
  // What the device had not yet put on the wire dies with it.
  std::erase_if(outbound_, [&](const Event& e) { return e.at > now; });
  if (worker_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      work_.push_back(Work{{}, true});
    }
    cv_.notify_all();
    return absl::OkStatus();
  }
  Done done = Run(Work{{}, true});
  if (!done.status.ok()) return done.status;
  Emit(std::move(done.bytes), now);
  return absl::OkStatus();
}

absl::Status VirtualDevice::Advance(absl::Time now, std::vector<uint8_t>* to_host) {
  if (worker_.joinable()) {
    std::deque<Done> done;
    {
      std::lock_guard<std::mutex> lock(mu_);
      done.swap(done_);
    }
    for (Done& d : done) {
      if (!d.status.ok()) return d.status;
      Emit(std::move(d.bytes), d.at);
    }
  }
  while (true) {
    const bool in_due = !inbound_.empty() && inbound_.front().at <= now;
    const bool out_due = !outbound_.empty() && outbound_.front().at <= now;
    if (!in_due && !out_due) return absl::OkStatus();
    // Earliest first, so a reset cuts off exactly what came after it.
    if (in_due && (!out_due || inbound_.front().at <= outbound_.front().at)) {
      Event e = std::move(inbound_.front());
      inbound_.pop_front();
      if (e.reset) {
        if (absl::Status s = Reset(e.at); !s.ok()) return s;
        continue;
      }
      if (worker_.joinable()) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          work_.push_back(Work{std::move(e.bytes), false});
        }
        cv_.notify_all();
        continue;
      }
      Done done = Run(Work{std::move(e.bytes), false});
      if (!done.bytes.empty()) Emit(std::move(done.bytes), done.at);
    } else {
      Event e = std::move(outbound_.front());
      outbound_.pop_front();
      if (e.reset) {
        if (absl::Status s = Reset(e.at); !s.ok()) return s;
        continue;
      }
      stats_.bytes_to_host += e.bytes.size();
      to_host->insert(to_host->end(), e.bytes.begin(), e.bytes.end());
    }
  }
}

size_t VirtualDevice::Backlog() {
  size_t bytes = 0;
  for (const Event& e : inbound_) bytes += e.bytes.size();
  for (const Event& e : outbound_) bytes += e.bytes.size();
  std::lock_guard<std::mutex> lock(mu_);
  for (const Work& w : work_) bytes += w.bytes.size();
  for (const Done& d : done_) bytes += d.bytes.size();
  return bytes;
}

absl::Time VirtualDevice::NextEvent() const {
  absl::Time t = absl::InfiniteFuture();
  if (!inbound_.empty()) t = std::min(t, inbound_.front().at);
  if (!outbound_.empty()) t = std::min(t, outbound_.front().at);
  return t;
}

}  // namespace pim::emu
