#pragma once
// firegatectl on a Modbus line of its own, for when firegated is stopped (commissioning a new box,
// a daemon that will not start): the drivers' transports and technician code, run to completion
// on a private io_context. Never while the daemon polls the same line: main.cpp checks first.

#include "driver.hpp"
#include "modbus/profile.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace firegatectl {

/// Where to go: "HOST:PORT" (Modbus TCP) or a serial device ("/dev/ttyUSB0") with its settings.
struct direct_line {
  std::string target;
  std::uint32_t baud{9600};
  std::string parity{"N"};
  int data_bits{8};
  int stop_bits{1};
  std::chrono::milliseconds timeout{500};
  bool force{false};  ///< open a serial line another master holds (--force)
};

/// Whether another master holds the serial line `device` (the flock firegated takes on each line it
/// polls): tried without touching the line's settings, and let go at once. False for a line that
/// cannot be opened (the read itself then says why).
bool serial_line_held(const std::string& device);

/// Reads or writes registers; throws failure (usage) when the target cannot be understood.
firegate::register_reply direct_transact(const direct_line& line, const firegate::register_request& request);

/// Probes units first..last in turn, `progress` called for each.
void direct_scan(const direct_line& line, int first, int last,
                 std::shared_ptr<const firegate::modbus::profile_library> library,
                 const std::function<void(const firegate::unit_identity&)>& progress);

/// The shipped profiles firegatectl compares units with (FIREGATE_PROFILES, the source tree's from a
/// build folder, or the installed <prefix>/share/firegate/profiles); errors go to `errors`.
std::shared_ptr<const firegate::modbus::profile_library> shipped_profiles(const std::string& dir,
                                                                          std::string& errors);

}  // namespace firegatectl
