#include "engine_thread.h"

#include <vector>

#include <cstdio>
#include <cstdlib>

namespace pim::drivers::testing {
namespace {

void CheckOk(const absl::Status& s) {
  if (!s.ok()) {
    std::fprintf(stderr, "EngineThread: %s\n", s.ToString().c_str());
    std::abort();
  }
}

}  // namespace

EngineThread::EngineThread(std::unique_ptr<Transport> transport, std::unique_ptr<DeviceEngine> engine)
    : transport_(std::move(transport)), engine_(std::move(engine)) {
  std::vector<uint8_t> out;
  CheckOk(engine_->Boot(&out));
  CheckOk(transport_->Write(out, absl::Seconds(1)));
  thread_ = std::thread([this] { Loop(); });
}

EngineThread::~EngineThread() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void EngineThread::Pause(bool paused) {
  std::lock_guard<std::mutex> lock(mu_);
  paused_ = paused;
}

void EngineThread::Unplug() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  transport_.reset();
}

DeviceEngineStats EngineThread::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  return engine_->stats();
}

void EngineThread::Loop() {
  std::vector<uint8_t> rx(65536);
  std::vector<uint8_t> out;
  while (!stop_) {
    absl::StatusOr<size_t> n = transport_->Read(absl::MakeSpan(rx), absl::Milliseconds(10));
    if (!n.ok()) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (paused_) continue;
    out.clear();
    if (reset_requested_.exchange(false)) CheckOk(engine_->Boot(&out));
    if (*n > 0) {
      // Count frames only to place a scheduled reset between two of them.
      size_t begin = 0;
      for (size_t i = 0; i < *n; ++i) {
        if (rx[i] != 0 || reset_after_frames_ < 0) continue;
        if (--reset_after_frames_ == 0) {
          engine_->OnBytes(absl::MakeConstSpan(rx.data() + begin, i + 1 - begin), &out);
          begin = i + 1;
          CheckOk(engine_->Boot(&out));
          reset_after_frames_ = -1;
        }
      }
      engine_->OnBytes(absl::MakeConstSpan(rx.data() + begin, *n - begin), &out);
    }
    if (!out.empty() && !transport_->Write(out, absl::Seconds(1)).ok()) return;
  }
}

}  // namespace pim::drivers::testing
