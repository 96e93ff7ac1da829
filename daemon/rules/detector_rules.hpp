#pragma once
// The first alarm rules: a detector's state point (1 = fire, back to 0 = recovery) and device
// reachability (offline = fault, online again = its recovery). Pure logic: readings in, events out.
// The alarm engine issue replaces this with configurable rules; the shape (readings → events) stays.

#include "event.hpp"
#include "reading.hpp"

#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace firegate {

/// Thread safety: none; owned and called by the application on its loop.
class detector_rules {
 public:
  /// `new_id` returns a fresh event id; injected so tests are deterministic.
  explicit detector_rules(std::function<std::string()> new_id) : new_id_(std::move(new_id)) {}

  /// Events caused by one poll's readings of one device.
  std::vector<event> on_readings(std::span<const reading> readings);
  std::vector<event> on_device_status(const device_status& status);

  /// Devices with an active fire alarm, and the alarm's id.
  const std::map<std::string, std::string>& active_fires() const { return fire_; }

  /// The SD-1 state value that means fire (shared/domain/devices.md).
  static constexpr double fire_state = 1;
  static constexpr double normal_state = 0;

 private:
  std::function<std::string()> new_id_;
  std::map<std::string, std::string> fire_;     ///< device → active fire alarm id
  std::map<std::string, std::string> offline_;  ///< device → active offline fault id
};

}  // namespace firegate
