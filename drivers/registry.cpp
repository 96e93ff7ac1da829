#include "driver.hpp"

#include "modbus/modbus_driver.hpp"
#include "mqtt/mqtt_driver.hpp"

#include <stdexcept>

namespace firegate {

std::span<const driver_entry> registered_drivers() {
  static const driver_entry entries[] = {
      modbus::modbus_tcp_driver_entry(),
      modbus::modbus_rtu_driver_entry(),
      mqtt_ingest::mqtt_driver_entry(),
  };
  return entries;
}

config::bus_parsers driver_parsers() {
  config::bus_parsers parsers;
  for (const auto& e : registered_drivers()) parsers.emplace(std::string(e.name), e.parse);
  return parsers;
}

std::unique_ptr<bus_driver> create_driver(boost::asio::any_io_executor executor,
                                          const config::bus_config& bus, reading_sink& sink) {
  for (const auto& e : registered_drivers()) {
    if (e.name == bus.driver) return e.create(std::move(executor), bus, sink);
  }
  // The validator accepts only registered names, so this is a bug.
  throw std::logic_error("no driver registered for " + bus.driver);
}

}  // namespace firegate
