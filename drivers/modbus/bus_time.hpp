#pragma once
// Bus time on a Modbus RTU line: what one exchange costs the line, and what a bus's schedules ask
// of it, from the requests the driver really sends (each profile's coalesced plans, profile.hpp).
// Pure arithmetic, no I/O: `firegated --check-config` warns from it when a line's schedule cannot
// fit its bus time (docs/rs485.md), and docs/rs485.md's sizing table is made with the same formula.

#include "modbus_bus.hpp"
#include "rtu_transport.hpp"

#include <chrono>
#include <cstddef>
#include <span>
#include <string>

namespace firegate::modbus {

/// What the line's timing is made of.
struct line_timing {
  std::uint32_t baud{9600};
  /// Bits a character: start, data, parity if any, stop. Modbus RTU specifies 11 (8 data bits with
  /// even parity, or without parity and 2 stop bits); a line set to 8N1 has 10.
  unsigned bits_per_char{11};
  /// From the silence that ends a request to the first byte of the answer: the device's own time,
  /// which no configuration key gives. SD-1-class detectors document 2-10 ms.
  std::chrono::microseconds turnaround{std::chrono::milliseconds(5)};
};

/// The device turnaround firegated assumes when it sizes a line (`line_timing::turnaround`'s default).
inline constexpr std::chrono::milliseconds assumed_turnaround{5};
/// Above this share of the line's time a schedule is warned about: what is left covers retries of
/// a unit that does not answer (a timeout each), writes, and a technician's reads.
inline constexpr double max_line_share = 0.9;

/// The timing of a configured line: its baud rate, its characters' bits, the assumed turnaround.
line_timing timing_of(const serial_line& line);

/// RTU frame sizes of a read: the request (address, PDU, CRC) and its normal answer (address,
/// function, byte count, data, CRC).
std::size_t rtu_request_bytes(const read_request& r);
std::size_t rtu_answer_bytes(const read_request& r);

/// The line time of one read: both frames, the 3.5-character silence after the request (the device
/// waits for it to know the request ended) and after the answer (the master waits for it before its
/// next request), and the device's turnaround.
std::chrono::microseconds exchange_time(const read_request& r, const line_timing& t);
/// The same for every request of a poll (a profile's plan).
std::chrono::microseconds exchange_time(std::span<const read_block> blocks, const line_timing& t);

/// Line seconds a second that one device's schedules ask: a full poll every poll interval, and its
/// alarm group at each alarm poll between two full polls (ceil(poll / alarm) - 1 of them: a full
/// poll is also an alarm poll, poll_schedule.hpp). A device without a profile asks nothing.
double device_load(const modbus_device_settings& d, const line_timing& t);
/// The same summed over a bus: above 1 the line cannot carry its schedules at all.
double bus_load(std::span<const modbus_device_settings> devices, const line_timing& t);

/// When a bus's schedules ask more than `max_line_share` of its line: the warning, naming the load
/// and the fixes (the alarm interval that fits, a baud rate that fits, how many lines); else empty.
std::string bus_time_warning(const modbus_bus_settings& bus, const line_timing& t);

}  // namespace firegate::modbus
