#pragma once
// The Modbus protocol core of one bus: one coroutine schedules its devices' polls one request at a
// time over a transport, decodes their profiles' points, and reports readings and reachability to
// the sink. Each device has two schedules: its alarm-group points every alarm interval, all its
// points every poll interval (a full poll covers the alarm points too). Of the devices due, the one
// asked longest ago goes next, ties in turn, so a dead unit costs its own timeout only and never
// stalls its neighbours' alarm polling; behind schedule, full polls give way to alarm reads
// (poll_schedule.hpp). Writes go between polls.

#include "../driver.hpp"
#include "profile.hpp"
#include "transport.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace firegate::modbus {

struct modbus_device_settings {
  std::string name;
  std::uint8_t unit_id{1};
  std::shared_ptr<const device_profile> profile;
  std::chrono::milliseconds poll_interval{1000};  ///< every point
  std::chrono::milliseconds alarm_interval{500};  ///< the alarm group's points
  /// The profile's alarm rules with this device's overrides ([devices.rules.<name>]).
  std::shared_ptr<const std::vector<alarm_rule>> rules;
  /// Its report strategies with the site's overrides ([devices.report]); null: the profile's.
  std::shared_ptr<const report_policies> reports;
};

/// What every Modbus bus has, whatever its transport.
struct modbus_bus_settings : config::driver_settings {
  std::chrono::milliseconds timeout{1000};        ///< per request
  std::chrono::milliseconds poll_interval{1000};  ///< devices' default full-poll interval
  std::chrono::milliseconds alarm_interval{500};  ///< devices' default alarm-group interval
  std::uint32_t offline_after{3};                 ///< consecutive failures before a device is offline
  /// An offline device is retried after the poll interval (at least 0.5 s), then twice as long each
  /// time it still fails, up to this.
  std::chrono::milliseconds offline_retry_max{30000};
  /// Requests outstanding at once on the connection: 1 (one at a time) but for Modbus TCP gateways
  /// that accept several (max_in_flight), each for another device.
  std::size_t max_in_flight{1};
  /// A bus waiting for its next device to be due wakes on this grid of the steady clock, shared by
  /// every bus of the process: buses whose polls fall at different moments of the interval (their
  /// connections made or lost at different times) wake together, one wake-up of the loop for many
  /// polls; on a site of many Modbus TCP connections wake-ups cost more than anything else a poll
  /// does (docs/performance.md). A poll waits up to this much longer, and only a wait of at least
  /// this long is moved (a busy bus, a gateway's line behind it, is not held idle). 0 on a serial
  /// line, which its own timing paces.
  std::chrono::milliseconds wake_grid{0};
  /// After a broadcast write (device "*"), the line stays quiet this long while the units act.
  std::chrono::milliseconds broadcast_turnaround{100};
  std::vector<modbus_device_settings> devices;
  /// Every profile of the configuration's profile folder: what a scan compares units with.
  std::shared_ptr<const profile_library> library;
  /// Where the bus's table is in the site file ("buses[1]" and its line), for warnings.
  std::string table_path;
  std::uint32_t table_line{0};

  std::vector<device_description> describe() const override;
  std::vector<std::pair<std::string, std::string>> writables_at(std::uint8_t unit, std::string_view table,
                                                                std::uint16_t address,
                                                                std::uint16_t count) const override;
  config::settings_list summary() const override;
  config::settings_list device_summary(const std::string& device) const override;
  const modbus_device_settings* find(const std::string& device) const {
    for (const auto& d : devices) {
      if (d.name == device) return &d;
    }
    return nullptr;
  }
};

/// Creates a bus driver over `t`; the settings are shared with the configuration that made them.
std::unique_ptr<bus_driver> make_modbus_bus(boost::asio::any_io_executor ex, std::string name,
                                            std::shared_ptr<const modbus_bus_settings> settings,
                                            std::unique_ptr<transport> t, reading_sink& sink);

}  // namespace firegate::modbus
