#include "bus_time.hpp"

#include "codec/rtu.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

namespace firegate::modbus {

namespace {

/// Alarm-group polls between two full polls: a full poll at 0, alarm polls every `alarm` after it
/// while before the next full poll (poll_schedule.hpp: a full poll is also an alarm poll).
double alarm_polls_per_full(std::chrono::milliseconds alarm, std::chrono::milliseconds poll) {
  if (alarm.count() <= 0 || alarm >= poll) return 0;
  return static_cast<double>((poll.count() + alarm.count() - 1) / alarm.count() - 1);
}

/// Requests a second that one device's schedules ask.
double device_requests(const modbus_device_settings& d) {
  if (!d.profile || d.poll_interval.count() <= 0) return 0;
  const auto& p = *d.profile;
  const double alarm_polls =
      p.alarm_blocks.empty() ? 0 : alarm_polls_per_full(d.alarm_interval, d.poll_interval);
  return (static_cast<double>(p.blocks.size()) + alarm_polls * static_cast<double>(p.alarm_blocks.size())) *
         1000.0 / static_cast<double>(d.poll_interval.count());
}

/// The bus's devices with their intervals raised to at least `alarm` and `poll` (an alarm interval
/// never above its device's poll interval, as the configuration requires).
std::vector<modbus_device_settings> raised(std::span<const modbus_device_settings> devices,
                                           std::chrono::milliseconds alarm, std::chrono::milliseconds poll) {
  std::vector<modbus_device_settings> out(devices.begin(), devices.end());
  for (auto& d : out) {
    d.poll_interval = std::max(d.poll_interval, poll);
    d.alarm_interval = std::min(std::max(d.alarm_interval, alarm), d.poll_interval);
  }
  return out;
}

struct intervals {
  std::chrono::milliseconds alarm, poll;
};

/// The smallest alarm interval (in steps of 50 ms) that brings the bus under `max_line_share`, with
/// the bus's poll interval or a few longer ones: alarms are what must be read soon, so a longer full
/// poll is the better trade; of equal alarm intervals, the shortest poll interval.
std::optional<intervals> fitting_intervals(const modbus_bus_settings& bus, const line_timing& t) {
  using std::chrono::milliseconds;
  std::vector<milliseconds> polls{bus.poll_interval};
  for (const auto p : {2000, 5000, 10000, 30000, 60000}) {
    if (milliseconds(p) > bus.poll_interval) polls.emplace_back(p);
  }
  std::optional<intervals> best;
  for (const auto poll : polls) {
    for (auto alarm = milliseconds((bus.alarm_interval.count() + 49) / 50 * 50);
         alarm <= poll && (!best || alarm < best->alarm); alarm += milliseconds(50)) {
      if (bus_load(raised(bus.devices, alarm, poll), t) <= max_line_share) {
        best = intervals{alarm, poll};
        break;
      }
    }
  }
  return best;
}

}  // namespace

line_timing timing_of(const serial_line& line) {
  const unsigned bits = 1U + line.data_bits + (line.parity == 'N' ? 0U : 1U) + line.stop_bits;
  return {line.baud, bits, assumed_turnaround};
}

std::size_t rtu_request_bytes(const read_request& r) {
  std::vector<std::uint8_t> pdu;
  encode_request(r, pdu);
  return pdu.size() + 3;  // address and CRC
}

std::size_t rtu_answer_bytes(const read_request& r) {
  const std::size_t data = is_bit_read(r.function) ? (r.count + 7U) / 8U : 2U * r.count;
  return 5 + data;  // address, function, byte count, data, CRC
}

std::chrono::microseconds exchange_time(const read_request& r, const line_timing& t) {
  const auto bytes = rtu_request_bytes(r) + rtu_answer_bytes(r);
  const auto frames = std::chrono::microseconds(
      static_cast<std::int64_t>(std::llround(1e6 * static_cast<double>(bytes * t.bits_per_char) / t.baud)));
  return frames + 2 * rtu_frame_silence(t.baud) + t.turnaround;
}

std::chrono::microseconds exchange_time(std::span<const read_block> blocks, const line_timing& t) {
  std::chrono::microseconds sum{0};
  for (const auto& b : blocks) sum += exchange_time(b.request, t);
  return sum;
}

double device_load(const modbus_device_settings& d, const line_timing& t) {
  if (!d.profile || d.poll_interval.count() <= 0) return 0;
  const auto& p = *d.profile;
  const double full = static_cast<double>(exchange_time(p.blocks, t).count());
  const double alarm = p.alarm_blocks.empty()
                           ? 0
                           : alarm_polls_per_full(d.alarm_interval, d.poll_interval) *
                                 static_cast<double>(exchange_time(p.alarm_blocks, t).count());
  // µs of line time per poll interval, over the poll interval in µs.
  return (full + alarm) / (1000.0 * static_cast<double>(d.poll_interval.count()));
}

double bus_load(std::span<const modbus_device_settings> devices, const line_timing& t) {
  double sum = 0;
  for (const auto& d : devices) sum += device_load(d, t);
  return sum;
}

std::string bus_time_warning(const modbus_bus_settings& bus, const line_timing& t) {
  const double load = bus_load(bus.devices, t);
  if (load <= max_line_share) return {};
  double requests = 0;
  for (const auto& d : bus.devices) requests += device_requests(d);
  std::vector<std::string> fixes;
  if (auto fit = fitting_intervals(bus, t)) {
    // A device may set its own intervals (they differ from the bus's): the fix is for those too.
    const bool own = std::any_of(bus.devices.begin(), bus.devices.end(), [&](const auto& d) {
      return (d.alarm_interval != bus.alarm_interval && d.alarm_interval < fit->alarm) ||
             (d.poll_interval != bus.poll_interval && d.poll_interval < fit->poll);
    });
    const bool poll = fit->poll != bus.poll_interval;
    fixes.push_back(fmt::format("raise alarm_interval_ms to {}{}{}", fit->alarm.count(),
                                poll ? fmt::format(" and poll_interval_ms to {}", fit->poll.count()) : "",
                                own ? " (on the bus and on each device that sets its own)" : ""));
  }
  for (const std::uint32_t baud : {2400U, 4800U, 9600U, 19200U, 38400U, 57600U, 115200U}) {
    auto faster = t;
    faster.baud = baud;
    if (baud > t.baud && bus_load(bus.devices, faster) <= max_line_share) {
      fixes.push_back(fmt::format("raise baud to {} if every device on the line allows it", baud));
      break;
    }
  }
  // Lines that each fit: the devices packed largest first, each into the first line with room
  // (whole devices: 32 equal ones at 14 % each need 6 lines, not the 5 that 440 % / 90 % gives).
  // A device that alone needs more than a line's share cannot be helped by splitting.
  {
    std::vector<double> loads;
    for (const auto& d : bus.devices) loads.push_back(device_load(d, t));
    std::sort(loads.rbegin(), loads.rend());
    std::vector<double> lines;
    bool fits = !loads.empty() && loads.front() <= max_line_share;
    for (const double l : fits ? loads : std::vector<double>{}) {
      auto room =
          std::find_if(lines.begin(), lines.end(), [&](double used) { return used + l <= max_line_share; });
      if (room == lines.end()) {
        lines.push_back(l);
      } else {
        *room += l;
      }
    }
    if (fits && lines.size() > 1) fixes.push_back(fmt::format("split the bus into {} lines", lines.size()));
  }
  if (fixes.empty()) {
    fixes.push_back(
        "split the bus and raise the intervals: no interval up to 60 s nor a baud rate up to 115200 fits "
        "these devices on one line");
  }
  std::string fix;
  for (std::size_t i = 0; i < fixes.size(); ++i) {
    fix += (i == 0 ? "" : i + 1 == fixes.size() ? ", or " : ", ") + fixes[i];
  }
  return fmt::format(
      "the schedules need {:.0f} % of the line's time ({} devices, {:.1f} requests a second at {} baud, "
      "{}-bit characters, {} ms device turnaround assumed); above {:.0f} % alarms are read late and a "
      "dead unit's retries do not fit: {} (docs/rs485.md)",
      100 * load, bus.devices.size(), requests, t.baud, t.bits_per_char,
      std::chrono::duration_cast<std::chrono::milliseconds>(t.turnaround).count(), 100 * max_line_share, fix);
}

}  // namespace firegate::modbus
