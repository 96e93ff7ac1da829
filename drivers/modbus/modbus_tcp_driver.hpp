#pragma once
// Modbus TCP bus driver: one connection to one server (a device or a TCP gateway in front of many
// unit ids), one coroutine that owns the socket and walks the poll schedule, one request at a time.

#include "../driver.hpp"
#include "profile.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace firegate::modbus {

struct modbus_device_settings {
  std::string name;
  std::uint8_t unit_id{1};
  std::shared_ptr<const device_profile> profile;
};

/// [[buses]] with driver = "modbus_tcp", and the Modbus keys of its devices.
struct modbus_tcp_settings final : config::driver_settings {
  std::string host;
  std::uint16_t port{502};
  std::chrono::milliseconds timeout{1000};        ///< per request
  std::chrono::milliseconds poll_interval{1000};  ///< one cycle over every device
  std::uint32_t offline_after{3};                 ///< consecutive failures before a device is offline
  std::vector<modbus_device_settings> devices;
};

driver_entry modbus_tcp_driver_entry();

}  // namespace firegate::modbus
