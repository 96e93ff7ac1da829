#pragma once
// The contract between the daemon and a field-bus driver: a driver runs its bus until stopped and
// reports every outcome, faults included, to a sink. Adding a protocol means adding a folder under
// drivers/ and one line in registry.cpp.

#include "reading.hpp"

#include "config/config.hpp"
#include "config/config_loader.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <memory>
#include <span>
#include <string_view>
#include <vector>

namespace firegate {

/// Where drivers report. Implemented by the application; called on the driver's executor (the
/// daemon's one io_context), never from another thread.
class reading_sink {
 public:
  virtual ~reading_sink() = default;
  /// Readings of one device from one poll, all with the same time.
  virtual void on_readings(std::span<const reading> readings) = 0;
  virtual void on_device_status(const device_status& status) = 0;
};

/// One bus (a TCP connection, a serial line) and the devices on it. Owned by the application.
class bus_driver {
 public:
  virtual ~bus_driver() = default;
  /// Starts polling on the executor given at creation. Returns at once.
  virtual void start() = 0;
  /// Cancels all outstanding work; the sink is not called afterwards. Idempotent.
  virtual void stop() = 0;
};

/// A registered driver: how to parse its configuration and how to create it.
struct driver_entry {
  std::string_view name;  ///< the value of buses[].driver
  config::bus_parser parse;
  std::unique_ptr<bus_driver> (*create)(boost::asio::any_io_executor executor, const config::bus_config& bus,
                                        reading_sink& sink);
};

/// Every driver firegate has (drivers/registry.cpp).
std::span<const driver_entry> registered_drivers();
/// The registry's parsers, for config::load_config_*.
config::bus_parsers driver_parsers();
/// Creates the driver for `bus`; its settings (parsed by the driver) name its devices.
std::unique_ptr<bus_driver> create_driver(boost::asio::any_io_executor executor,
                                          const config::bus_config& bus, reading_sink& sink);

}  // namespace firegate
