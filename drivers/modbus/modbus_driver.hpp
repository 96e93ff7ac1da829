#pragma once
// The Modbus drivers: "modbus_tcp" (MBAP over TCP) and "modbus_rtu" (RTU on a serial line). Each
// parses its [[buses]] table and its devices' keys, and builds the protocol core (modbus_bus) over
// its transport.

#include "modbus_bus.hpp"
#include "rtu_transport.hpp"
#include "tcp_transport.hpp"

namespace firegate::modbus {

/// [[buses]] with driver = "modbus_tcp".
struct modbus_tcp_settings final : modbus_bus_settings {
  std::string host;
  std::uint16_t port{502};
  tcp_framing framing{tcp_framing::mbap};  ///< framing = "rtu": RTU over TCP (serial device servers)
  config::settings_list summary() const override;
};

/// [[buses]] with driver = "modbus_rtu".
struct modbus_rtu_settings final : modbus_bus_settings {
  serial_line line;
  config::settings_list summary() const override;
  /// A schedule that asks more of the line than its bus time allows (bus_time.hpp).
  std::vector<config::config_error> warnings() const override;
};

driver_entry modbus_tcp_driver_entry();
driver_entry modbus_rtu_driver_entry();

}  // namespace firegate::modbus
