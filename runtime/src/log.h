#pragma once

#include <memory>

#include "spdlog/spdlog.h"

namespace pim::runtime {

// The runtime area's named logger ("runtime"). Created on first use with the default logger's
// sinks; the library never adds sinks or sets levels (the tool mains do).
inline std::shared_ptr<spdlog::logger> Logger() {
  if (std::shared_ptr<spdlog::logger> existing = spdlog::get("runtime")) return existing;
  auto logger = std::make_shared<spdlog::logger>("runtime", spdlog::default_logger()->sinks().begin(),
                                                 spdlog::default_logger()->sinks().end());
  logger->set_level(spdlog::default_logger()->level());
  try {
    spdlog::register_logger(logger);
  } catch (const spdlog::spdlog_ex&) {
    // Registered concurrently by another thread: use that one.
    if (std::shared_ptr<spdlog::logger> existing = spdlog::get("runtime")) return existing;
  }
  return logger;
}

}  // namespace pim::runtime
