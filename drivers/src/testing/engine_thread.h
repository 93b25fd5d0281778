#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>

#include "pim/drivers/device_engine.h"
#include "pim/drivers/transport.h"

namespace pim::drivers::testing {

// Serves a DeviceEngine over the device end of a Transport on its own thread, for tests.
// Pause() makes the device deaf and mute (a stall); ResetDevice() power-cycles it.
class EngineThread {
 public:
  EngineThread(std::unique_ptr<Transport> transport, std::unique_ptr<DeviceEngine> engine);
  ~EngineThread();  // stops and joins

  // While paused the device drops what it receives and sends nothing. Once Pause(true)
  // returns, no later byte gets an answer.
  void Pause(bool paused);
  // Reboots the engine (new nonce, chip emptied) before it handles the next bytes.
  void ResetDevice() { reset_requested_ = true; }
  // Reboots after the device has received `frames` more complete frames.
  void ResetAfterFrames(int frames) { reset_after_frames_ = frames; }
  // Destroys the transport end (the device vanishes) and stops.
  void Unplug();
  DeviceEngineStats stats();

 private:
  void Loop();

  std::mutex mu_;
  std::unique_ptr<Transport> transport_;
  std::unique_ptr<DeviceEngine> engine_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> paused_{false};
  std::atomic<bool> reset_requested_{false};
  std::atomic<int> reset_after_frames_{-1};
  std::thread thread_;
};

}  // namespace pim::drivers::testing
