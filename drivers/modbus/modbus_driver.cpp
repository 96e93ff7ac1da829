#include "modbus_driver.hpp"

#include "bus_time.hpp"
#include "config/alarm_rules.hpp"
#include "config/report_config.hpp"
#include "config/suggest.hpp"
#include "tcp_pipelined_transport.hpp"
#include "technician.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>
#include <map>

namespace firegate::modbus {
namespace asio = boost::asio;

namespace {

/// The Modbus profiles of this configuration load, read once whatever the number of buses.
std::shared_ptr<const profile_library> profiles_for(config::parse_context& context) {
  auto& slot = context.cache["modbus.profiles"];
  if (!slot) {
    slot = std::make_shared<const profile_library>(
        load_profiles(config::profile_folders(context, "modbus"), context.errors));
  }
  return std::static_pointer_cast<const profile_library>(slot);
}

/// RTU lines only: how long the line stays quiet after a broadcast write while the units act.
void parse_turnaround(modbus_bus_settings& s, config::config_node& bus) {
  s.broadcast_turnaround =
      std::chrono::milliseconds(bus.get_integer("broadcast_turnaround_ms", 0, 10000, 100).value_or(100));
}

/// Keys every Modbus bus has, and its devices' unit ids and profiles.
void parse_common(modbus_bus_settings& s, config::config_node& bus, std::span<config::device_section> devices,
                  config::parse_context& context) {
  s.table_path = bus.path();
  s.table_line = bus.line();
  s.timeout = std::chrono::milliseconds(bus.get_integer("timeout_ms", 50, 60000, 1000).value_or(1000));
  s.poll_interval =
      std::chrono::milliseconds(bus.get_integer("poll_interval_ms", 50, 3600000, 1000).value_or(1000));
  // Alarm-group points every 500 ms unless set, and never less often than every point.
  const auto alarm_default = std::min<std::int64_t>(500, s.poll_interval.count());
  s.alarm_interval = std::chrono::milliseconds(
      bus.get_integer("alarm_interval_ms", 50, 60000, alarm_default).value_or(alarm_default));
  if (s.alarm_interval > s.poll_interval) {
    bus.error("alarm_interval_ms",
              fmt::format("the alarm group ({} ms) would be read less often than every point ({} ms); make "
                          "alarm_interval_ms at most poll_interval_ms",
                          s.alarm_interval.count(), s.poll_interval.count()));
  }
  s.offline_after = static_cast<std::uint32_t>(bus.get_integer("offline_after", 1, 100, 3).value_or(3));
  s.offline_retry_max = std::chrono::milliseconds(
      bus.get_integer("offline_retry_max_ms", 1000, 3600000, 30000).value_or(30000));
  s.library = profiles_for(context);
  const auto& library = *s.library;
  std::vector<std::string> names;
  for (const auto& [name, profile] : library) names.push_back(name);
  // No profile could be loaded (a wrong [profiles] dir): one error for the bus after that folder's,
  // not one a device.
  std::vector<std::string> without_profiles;
  std::map<std::int64_t, std::string> units;
  for (auto& d : devices) {
    modbus_device_settings m;
    m.name = d.common.name;
    // Modbus Application Protocol §4.1: unit ids 1–247 address a device; 0 is broadcast.
    const auto unit = d.node.get_integer("unit_id", 1, 247, std::nullopt);
    m.unit_id = static_cast<std::uint8_t>(unit.value_or(1));
    if (unit) {
      // Two devices at one unit id would both answer every request: the frames collide on the line.
      if (auto [it, fresh] = units.emplace(*unit, d.common.name); !fresh) {
        d.node.error(
            "unit_id",
            fmt::format("{} is also the unit id of {} on this bus; give each device on a bus its own "
                        "unit id (set on the device itself: DIP switches or its menu)",
                        *unit, it->second));
      }
    }
    // A device may be read faster or slower than its bus's default (a detector in the kitchen, a
    // meter in the basement).
    m.poll_interval = std::chrono::milliseconds(
        d.node.get_integer("poll_interval_ms", 50, 3600000, s.poll_interval.count()).value_or(1000));
    const auto device_alarm_default = std::min(s.alarm_interval, m.poll_interval).count();
    m.alarm_interval = std::chrono::milliseconds(
        d.node.get_integer("alarm_interval_ms", 50, 60000, device_alarm_default).value_or(500));
    if (m.alarm_interval > m.poll_interval) {
      d.node.error("alarm_interval_ms",
                   fmt::format("the alarm group ({} ms) would be read less often than every point ({} ms); "
                               "make alarm_interval_ms at most poll_interval_ms",
                               m.alarm_interval.count(), m.poll_interval.count()));
    }
    if (auto p =
            d.node.get_string("profile", config::presence::required, "name a profile, such as \"SD-1\"")) {
      if (auto it = library.find(*p); it != library.end()) {
        m.profile = it->second;
        // A profile read by parse_profile has its shared list; one built otherwise gets its own.
        m.rules = m.profile->shared_rules ? m.profile->shared_rules
                                          : std::make_shared<const std::vector<alarm_rule>>(m.profile->rules);
        if (auto overrides = d.node.get_table("rules", config::presence::optional)) {
          auto rules = m.profile->rules;
          config::apply_rule_overrides(*overrides, rules);
          overrides->finish();
          m.rules = std::make_shared<const std::vector<alarm_rule>>(std::move(rules));
        }
        m.reports = config::device_reports(d.node, *m.profile->described);
      } else if (names.empty()) {
        without_profiles.push_back(d.common.name);
        for (const char* key : {"rules", "report"}) d.node.skip(key);  // the folder is the error
      } else {
        // Its rule and report overrides cannot be checked without the profile: one error, this one.
        for (const char* key : {"rules", "report"}) d.node.skip(key);
        d.node.error("profile",
                     fmt::format("\"{}\" is not a profile in {};{} known: {}", *p,
                                 config::profile_folders_text(config::profile_folders(context, "modbus")),
                                 config::did_you_mean(*p, names), fmt::join(names, ", ")));
      }
    }
    s.devices.push_back(std::move(m));
  }
  config::report_devices_without_profiles(
      bus, std::move(without_profiles),
      config::profile_folders_text(config::profile_folders(context, "modbus")));
}

std::shared_ptr<const config::driver_settings> parse_tcp(config::config_node& bus,
                                                         std::span<config::device_section> devices,
                                                         config::parse_context& context) {
  auto s = std::make_shared<modbus_tcp_settings>();
  s->host =
      bus.get_string("host", config::presence::required, "give the Modbus TCP server's address").value_or("");
  s->port = static_cast<std::uint16_t>(bus.get_integer("port", 1, 65535, 502).value_or(502));
  // A serial device server (Moxa NPort, USR-TCP232 and the like) in transparent mode passes RTU
  // frames through: framing = "rtu". One in Modbus gateway mode speaks Modbus TCP: the default.
  if (auto framing = bus.get_enum_or("framing", {"mbap", "rtu"}, "mbap")) {
    s->framing = *framing == "rtu" ? tcp_framing::rtu : tcp_framing::mbap;
  }
  // Wake-ups on a 10 ms grid, but for a serial line behind a device server (modbus_bus.hpp).
  s->wake_grid =
      s->framing == tcp_framing::mbap ? std::chrono::milliseconds(10) : std::chrono::milliseconds(0);
  // Requests outstanding at once: only for gateways whose manual says they queue or parallelise
  // requests (MBAP's transaction id pairs the answers); RTU frames have no id to pair them by.
  s->max_in_flight = static_cast<std::size_t>(bus.get_integer("max_in_flight", 1, 16, 1).value_or(1));
  if (s->max_in_flight > 1 && s->framing == tcp_framing::rtu) {
    bus.error(
        "max_in_flight",
        "RTU frames carry no transaction id, so only one request can be outstanding; remove it or use 1");
  }
  if (s->framing == tcp_framing::rtu && !s->host.empty()) {
    // A serial device server's port is its RS-485 line: one master, as a serial line.
    const auto where = fmt::format("{}:{}", s->host, s->port);
    if (auto [it, fresh] = context.claimed.emplace("rtu-over-tcp:" + where, context.bus); !fresh) {
      bus.error("framing", fmt::format("{} is also the serial server line of bus \"{}\"; a line has one "
                                       "master: put the devices of both under one [[buses]] entry",
                                       where, it->second));
    }
  }
  if (s->framing == tcp_framing::rtu) {
    parse_turnaround(*s, bus);
  } else if (bus.contains("broadcast_turnaround_ms")) {
    bus.error("broadcast_turnaround_ms",
              "Modbus TCP has no broadcast; this is for RTU lines (framing = \"rtu\")");
    (void)bus.get_integer("broadcast_turnaround_ms", 0, 10000, 100);
  }
  parse_common(*s, bus, devices, context);
  return s;
}

std::shared_ptr<const config::driver_settings> parse_rtu(config::config_node& bus,
                                                         std::span<config::device_section> devices,
                                                         config::parse_context& context) {
  auto s = std::make_shared<modbus_rtu_settings>();
  s->line.device =
      bus.get_string("device", config::presence::required, "give the serial device, such as \"/dev/ttyUSB0\"")
          .value_or("");
  if (!s->line.device.empty()) {
    // A line has one master. A second bus on it would be refused the line's lock at every try and
    // its devices never read; and /dev/serial/by-id/… may name the same adapter as /dev/ttyUSB0
    // (known only while it is plugged in: a missing device is compared by its name).
    std::error_code missing;
    const std::filesystem::path written(s->line.device);
    const auto real = std::filesystem::canonical(written, missing);
    const auto line = missing ? written.lexically_normal() : real;
    if (auto [it, fresh] = context.claimed.emplace("serial:" + line.string(), context.bus); !fresh) {
      bus.error("device",
                fmt::format("{}{} is also the line of bus \"{}\"; a line has one master: put the "
                            "devices of both under one [[buses]] entry",
                            s->line.device, line == written ? "" : " (" + line.string() + ")", it->second));
    }
  }
  if (auto baud = bus.get_integer("baud", 300, 921600, 9600)) {
    static constexpr std::int64_t standard[] = {1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200};
    if (std::find(std::begin(standard), std::end(standard), *baud) == std::end(standard)) {
      bus.error("baud",
                fmt::format("{} is not a standard rate; use 9600 (most detectors), 19200, 38400 or 115200, "
                            "or 1200, 2400, 4800 or 57600 if the device's manual says so",
                            *baud));
    }
    s->line.baud = static_cast<std::uint32_t>(*baud);
  }
  if (auto parity = bus.get_enum_or("parity", {"none", "even", "odd"}, "none")) {
    s->line.parity = static_cast<char>(std::toupper((*parity)[0]));
  }
  s->line.data_bits = static_cast<std::uint8_t>(bus.get_integer("data_bits", 7, 8, 8).value_or(8));
  s->line.stop_bits = static_cast<std::uint8_t>(bus.get_integer("stop_bits", 1, 2, 1).value_or(1));
  parse_turnaround(*s, bus);
  parse_common(*s, bus, devices, context);
  return s;
}

std::unique_ptr<bus_driver> create_tcp(asio::any_io_executor ex, const config::bus_config& bus,
                                       reading_sink& sink) {
  auto s = std::dynamic_pointer_cast<const modbus_tcp_settings>(bus.settings);
  std::unique_ptr<transport> t;
  if (s->max_in_flight > 1) {
    t = std::make_unique<tcp_pipelined_transport>(ex, s->host, s->port, s->timeout);
  } else {
    t = std::make_unique<tcp_transport>(ex, s->host, s->port, s->timeout, s->framing);
  }
  return make_modbus_bus(std::move(ex), bus.name, std::move(s), std::move(t), sink);
}

std::unique_ptr<bus_driver> create_rtu(asio::any_io_executor ex, const config::bus_config& bus,
                                       reading_sink& sink) {
  auto s = std::dynamic_pointer_cast<const modbus_rtu_settings>(bus.settings);
  auto t = std::make_unique<rtu_transport>(ex, s->line, s->timeout);
  return make_modbus_bus(std::move(ex), bus.name, std::move(s), std::move(t), sink);
}

}  // namespace

std::vector<device_description> modbus_bus_settings::describe() const {
  std::vector<device_description> out;
  for (const auto& d : devices)
    out.push_back(firegate::describe(d.name, d.profile ? d.profile->described : nullptr, d.rules, d.reports,
                                     d.profile ? d.profile->shared_rules : nullptr));
  return out;
}

std::vector<std::pair<std::string, std::string>> modbus_bus_settings::writables_at(
    std::uint8_t unit, std::string_view table, std::uint16_t address, std::uint16_t count) const {
  std::vector<std::pair<std::string, std::string>> out;
  const auto t = parse_table(table);
  if (!t) return out;
  const unsigned first = address, last = address + static_cast<unsigned>(count) - 1;
  for (const auto& d : devices) {
    if (d.unit_id != unit || !d.profile) continue;
    for (const auto& w : d.profile->writes) {
      const auto& p = w.target;
      const unsigned from = p.address, to = p.address + register_span(p) - 1U;
      if (p.table == *t && from <= last && to >= first) out.emplace_back(d.name, p.name);
    }
  }
  return out;
}

config::settings_list modbus_bus_settings::summary() const {
  return {{"timeout_ms", std::int64_t{timeout.count()}},
          {"poll_interval_ms", std::int64_t{poll_interval.count()}},
          {"alarm_interval_ms", std::int64_t{alarm_interval.count()}},
          {"offline_after", std::int64_t{offline_after}},
          {"offline_retry_max_ms", std::int64_t{offline_retry_max.count()}}};
}

config::settings_list modbus_bus_settings::device_summary(const std::string& device) const {
  const auto* d = find(device);
  if (d == nullptr) return {};
  return {{"unit_id", std::int64_t{d->unit_id}},
          {"profile", d->profile ? d->profile->name : std::string()},
          {"poll_interval_ms", std::int64_t{d->poll_interval.count()}},
          {"alarm_interval_ms", std::int64_t{d->alarm_interval.count()}}};
}

config::settings_list modbus_tcp_settings::summary() const {
  auto out = modbus_bus_settings::summary();
  out.insert(out.begin(), {{"host", host},
                           {"port", std::int64_t{port}},
                           {"framing", std::string(framing == tcp_framing::rtu ? "rtu" : "mbap")},
                           {"max_in_flight", static_cast<std::int64_t>(max_in_flight)}});
  // A broadcast's quiet time is a serial line's: RTU framing only (the loader refuses it otherwise).
  if (framing == tcp_framing::rtu)
    out.push_back({"broadcast_turnaround_ms", std::int64_t{broadcast_turnaround.count()}});
  return out;
}

config::settings_list modbus_rtu_settings::summary() const {
  auto out = modbus_bus_settings::summary();
  out.insert(out.begin(), {{"device", line.device},
                           {"baud", std::int64_t{line.baud}},
                           {"parity", std::string(line.parity == 'E'   ? "even"
                                                  : line.parity == 'O' ? "odd"
                                                                       : "none")},
                           {"data_bits", std::int64_t{line.data_bits}},
                           {"stop_bits", std::int64_t{line.stop_bits}}});
  out.push_back({"broadcast_turnaround_ms", std::int64_t{broadcast_turnaround.count()}});
  return out;
}

std::vector<config::config_error> modbus_rtu_settings::warnings() const {
  auto text = bus_time_warning(*this, timing_of(line));
  if (text.empty()) return {};
  return {{"", table_line, table_path, std::move(text), false}};
}

driver_entry modbus_tcp_driver_entry() {
  return {"modbus_tcp", parse_tcp, create_tcp};
}
driver_entry modbus_rtu_driver_entry() {
  return {"modbus_rtu", parse_rtu, create_rtu};
}

}  // namespace firegate::modbus
