#pragma once
// What drivers report: readings of points and changes in a device's reachability. Plain values,
// copied into rules, the store and the uplink.

#include <chrono>
#include <cstdint>
#include <string>
#include <system_error>
#include <vector>

namespace firegate {

using clock = std::chrono::system_clock;

enum class quality : std::uint8_t {
  good = 0,
  bad = 1,  ///< the device answered but the value is not usable (probe open, out of range)
};

/// One value of one point of one device, as read.
struct reading {
  std::string device;  ///< device name from the configuration
  std::string point;   ///< point name from the device profile, such as "state"
  double value{0};     ///< engineering value, scale and offset applied
  std::string unit;    ///< "", "dB/m", "°C", "V", ...
  quality q{quality::good};
  clock::time_point time;
  /// Sent to the platform as telemetry (its report strategy, domain/report.hpp); every reading is
  /// stored and decided on either way.
  bool reported{true};
};

/// A device became reachable or stopped answering. A device that stops answering is data (it becomes
/// a fault alarm), not only a log line.
struct device_status {
  std::string device;
  bool online{true};
  std::error_code error;  ///< the last failure when going offline
  std::string detail;     ///< what was tried, for the log and the event ("127.0.0.1:1502 unit 3")
  clock::time_point time;
  /// Offline because its whole bus is (a bus_status said so): counted offline, but its bus's fault
  /// is the one alert.
  bool by_bus{false};
};

/// A device that answers, but mostly badly: its recent polls failed often enough (malformed answers,
/// CRC errors, timeouts) that readings are being lost, though it never stayed silent long enough to
/// go offline. Or it is good again.
struct device_quality {
  std::string device;
  bool poor{false};
  std::string detail;  ///< "9 of the last 20 polls failed (6 malformed, ...)" and where
  clock::time_point time;
};

/// A bus's transport failed (the connection refused or lost, the serial port gone, or every unit on
/// it silent at once), or it works again: one fault for the cause, not one per device behind it.
struct bus_status {
  std::string bus;
  bool online{true};
  std::error_code error;             ///< the last failure when going offline
  std::string address;               ///< where the bus is: "127.0.0.1:1502", "/dev/ttyUSB0"
  std::string failed;                ///< what failed, for people ("the connection was refused")
  std::vector<std::string> devices;  ///< the devices behind it (offline with it)
  clock::time_point time;
  std::string check;  ///< what to check, for people; the driver's own advice
};

}  // namespace firegate
