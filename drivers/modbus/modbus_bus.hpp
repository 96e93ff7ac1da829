#pragma once
// The Modbus protocol core of one bus: walks its devices one request at a time over a transport,
// decodes their profiles' points, and reports readings and reachability to the sink. A dead unit
// costs its own timeout only; its neighbours are still read in the same cycle.

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
};

/// What every Modbus bus has, whatever its transport.
struct modbus_bus_settings : config::driver_settings {
  std::chrono::milliseconds timeout{1000};        ///< per request
  std::chrono::milliseconds poll_interval{1000};  ///< one cycle over every device
  std::uint32_t offline_after{3};                 ///< consecutive failures before a device is offline
  /// An offline device is retried after the poll interval (at least 0.5 s), then twice as long each
  /// time it still fails, up to this.
  std::chrono::milliseconds offline_retry_max{30000};
  std::vector<modbus_device_settings> devices;
};

/// Creates a bus driver over `t`; the settings are shared with the configuration that made them.
std::unique_ptr<bus_driver> make_modbus_bus(boost::asio::any_io_executor ex, std::string name,
                                            std::shared_ptr<const modbus_bus_settings> settings,
                                            std::unique_ptr<transport> t, reading_sink& sink);

}  // namespace firegate::modbus
