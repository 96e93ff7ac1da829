#pragma once
// For tests that run a bus driver on their own io_context: a sink that records everything the
// driver reports, and a loop runner that waits for a condition with a deadline.

#include "driver.hpp"
#include "modbus/profile.hpp"
#include "mqtt/mapping.hpp"
#include "mqtt/mqtt_driver.hpp"
#include "support.hpp"

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace firegate::test {

struct recording_sink final : reading_sink {
  std::vector<reading> readings;
  std::vector<device_status> statuses;
  std::vector<bus_status> bus_statuses;
  /// Both lists in the order they were told: whether a bus's status, and its index in its list.
  std::vector<std::pair<bool, std::size_t>> told;
  /// When each device's poll was reported, in order.
  std::map<std::string, std::vector<std::chrono::steady_clock::time_point>> polls;
  /// How many readings each of a device's polls reported, in order.
  std::map<std::string, std::vector<std::size_t>> poll_sizes;
  /// A device whose readings the sink throws on, once recorded: a fault in what the readings are
  /// handed to.
  std::string throws_on;
  /// Link-quality reports, in order, and a device whose reports the sink throws on once recorded.
  std::vector<device_quality> qualities;
  std::string throws_on_quality;
  /// Called with each link-quality report as it is recorded.
  std::function<void(const device_quality&)> on_quality;
  /// A device whose status reports the sink throws on once recorded.
  std::string throws_on_status;

  void on_readings(std::span<const reading> r) override {
    readings.insert(readings.end(), r.begin(), r.end());
    if (r.empty()) return;
    polls[r.front().device].push_back(std::chrono::steady_clock::now());
    poll_sizes[r.front().device].push_back(r.size());
    if (r.front().device == throws_on) throw std::runtime_error("sink fault");
  }
  void on_device_status(const device_status& s) override {
    told.emplace_back(false, statuses.size());
    statuses.push_back(s);
    if (s.device == throws_on_status) throw std::runtime_error("sink fault");
  }
  void on_bus_status(const bus_status& s) override {
    told.emplace_back(true, bus_statuses.size());
    bus_statuses.push_back(s);
  }
  void on_device_quality(const device_quality& q) override {
    qualities.push_back(q);
    if (on_quality) on_quality(q);
    if (q.device == throws_on_quality) throw std::runtime_error("sink fault");
  }

  /// The latest value of `point`, if any.
  std::optional<double> last(const std::string& point) const {
    for (auto it = readings.rbegin(); it != readings.rend(); ++it) {
      if (it->point == point) return it->value;
    }
    return std::nullopt;
  }
};

/// A shipped profile (config/profiles/modbus), loaded as the daemon loads it.
inline std::shared_ptr<const modbus::device_profile> shipped_profile(const std::string& name) {
  config::config_errors errors;
  auto library = modbus::load_profiles(source_dir() + "/config/profiles/modbus", errors);
  if (!errors.empty()) throw std::runtime_error(errors.format("shipped profiles"));
  return library.at(name);
}

/// The shipped MQTT ingest profiles (config/profiles/mqtt), loaded as the daemon loads them.
inline mqtt_ingest::profile_library shipped_ingest_profiles() {
  config::config_errors errors;
  auto library = mqtt_ingest::load_ingest_profiles(source_dir() + "/config/profiles/mqtt", errors);
  if (!errors.empty()) throw std::runtime_error(errors.format("shipped profiles"));
  return library;
}

/// Runs `io` until `condition` holds or `timeout` passes; returns whether it held.
inline bool run_until(boost::asio::io_context& io, const std::function<bool()>& condition,
                      std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    io.run_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace firegate::test
