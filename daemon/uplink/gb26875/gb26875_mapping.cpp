#include "gb26875_mapping.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>

namespace firegate {
namespace {

using gb26875::app_data;
using gb26875::info_object;

std::int64_t clamp_i16(double v) {
  if (!std::isfinite(v)) return 0;
  return static_cast<std::int64_t>(std::clamp(std::round(v), -32768.0, 32767.0));
}

}  // namespace

std::optional<gb_analog_code> gb_analog_code_of(std::string_view unit) {
  if (unit == "°C" || unit == "degC" || unit == "C") return gb_analog_code{3, 10};
  if (unit == "MPa") return gb_analog_code{4, 10};
  if (unit == "%LEL") return gb_analog_code{6, 10};
  if (unit == "V") return gb_analog_code{8, 10};
  if (unit == "A") return gb_analog_code{9, 10};
  if (unit == "mA") return gb_analog_code{residual_current_analog_type, 1};
  return std::nullopt;
}

gb_version firegate_gb_version() {
  unsigned major = 0, minor = 0;
  std::sscanf(FIREGATE_VERSION, "%u.%u", &major, &minor);
  return {major, minor};
}

std::optional<std::uint8_t> gb_component_type(const annotation_table& types, std::string_view point) {
  const auto narrow = [](std::int64_t v) {
    return static_cast<std::uint8_t>(std::clamp<std::int64_t>(v, 0, 255));
  };
  if (!point.empty()) {
    if (const auto it = types.find("point." + std::string(point)); it != types.end()) {
      if (it->second == 0) return std::nullopt;
      return narrow(it->second);
    }
  }
  const auto it = types.find("component_type");
  return it == types.end() ? std::uint8_t{0} : narrow(it->second);
}

std::uint16_t gb_status_bits(event_kind kind, std::string_view rule) {
  switch (kind) {
    case event_kind::fire_alarm:
    case event_kind::alarm_escalation:
      return gb_status::normal | gb_status::fire;
    case event_kind::supervisory_alarm:
      return gb_status::normal | gb_status::supervisory;
    case event_kind::device_fault: {
      const bool power =
          rule.find("power") != std::string_view::npos || rule.find("battery") != std::string_view::npos;
      return gb_status::normal | (power ? gb_status::power_fault : gb_status::fault);
    }
    case event_kind::device_offline:
    case event_kind::linkage_failed:
      return gb_status::normal | gb_status::fault;
    case event_kind::bus_offline:
      return gb_status::normal | gb_status::fault | gb_status::bus_fault;
    case event_kind::device_shielded:
      return gb_status::normal | gb_status::shielded;
    case event_kind::test_mode_started:
      return 0;  // bit 0 clear: under test
    case event_kind::linkage_done:
      return gb_status::normal | gb_status::started | gb_status::feedback;
    default:
      return gb_status::normal;
  }
}

gb26875_mapper::gb26875_mapper(const config::gateway_file& cfg) {
  if (cfg.gb26875) {
    system_type_ = cfg.gb26875->system_type;
    system_address_ = cfg.gb26875->system_address;
  }
  for (const auto& d : cfg.devices) {
    if (!d.gb26875_address) continue;
    device_entry e;
    e.address = *d.gb26875_address;
    e.description = gb26875::to_gb18030(d.location.empty() ? d.name : d.location);
    if (const auto* described = cfg.catalogue.find(d.name)) e.types = described->annotations_for("gb26875");
    by_address_.emplace(e.address, d.name);
    devices_.emplace(d.name, std::move(e));
  }
}

std::optional<gb_component> gb26875_mapper::component(std::string_view device, std::string_view point,
                                                      bool reported_only) const {
  const auto it = devices_.find(device);
  if (it == devices_.end()) return std::nullopt;
  gb_component c;
  c.system_type = system_type_;
  c.system_address = system_address_;
  c.address = it->second.address;
  c.description = it->second.description;
  auto type = gb_component_type(it->second.types, point);
  // A point kept from the centre: its device's own type where an event names it anyway.
  if (!type) {
    if (reported_only) return std::nullopt;
    type = gb_component_type(it->second.types, "");
  }
  c.component_type = type.value_or(0);
  return c;
}

std::string gb26875_mapper::device_at(std::uint32_t address) const {
  const auto it = by_address_.find(address);
  return it != by_address_.end() ? it->second : std::string();
}

std::vector<std::string> gb26875_mapper::devices() const {
  std::vector<std::string> out;
  for (const auto& [address, name] : by_address_) out.push_back(name);
  return out;
}

std::optional<app_data> gb26875_mapper::event(const firegate::event& e,
                                              std::chrono::system_clock::duration clock_offset,
                                              std::string& error) const {
  const auto label = gb26875::local_time_label(e.time + clock_offset);
  switch (e.kind) {
    case event_kind::storage_fault:
      return app_data{21, {{{std::int64_t{gb_uitd::normal | gb_uitd::fault}}, label}}};
    case event_kind::storage_recovery:
    case event_kind::bus_online:
      return app_data{21, {{{std::int64_t{gb_uitd::normal}}, label}}};
    case event_kind::bus_offline:
      // A field bus is the UITD's monitored line (bit 6).
      return app_data{21, {{{std::int64_t{gb_uitd::normal | gb_uitd::fault | gb_uitd::line_fault}}, label}}};
    case event_kind::storage_eviction:
    case event_kind::alarm_acknowledged:
    case event_kind::linkage_overridden:
    case event_kind::config_rejected:
    case event_kind::config_applied:
    case event_kind::register_written:
    case event_kind::clock_sync_refused:
    case event_kind::config_changed:
    case event_kind::config_confirmed:
    case event_kind::config_rolled_back:
    case event_kind::clock_unsynchronised:
    case event_kind::clock_synchronised:
      return std::nullopt;  // nothing the standard carries
    default:
      break;
  }
  const auto c = component(e.device, e.point);
  if (!c) {
    error = "device \"" + e.device + "\" has no gb26875_address";
    return std::nullopt;
  }
  auto bits = gb_status_bits(e.kind, e.rule);
  if (e.test) bits = static_cast<std::uint16_t>(bits & ~gb_status::normal);
  info_object o{
      {std::int64_t{c->system_type}, std::int64_t{c->system_address}, std::int64_t{c->component_type},
       std::int64_t{c->address}, std::int64_t{bits}, c->description},
      label};
  return app_data{2, {std::move(o)}};
}

std::vector<app_data> gb26875_mapper::analog(std::span<const reading> readings,
                                             std::chrono::system_clock::duration clock_offset) const {
  std::vector<app_data> out;
  for (const auto& r : readings) {
    if (r.q != quality::good) continue;
    const auto code = gb_analog_code_of(r.unit);
    if (!code) continue;
    const auto c = component(r.device, r.point, true);
    if (!c) continue;
    if (out.empty() || out.back().objects.size() >= 63) out.push_back(app_data{3, {}});
    out.back().objects.push_back(
        {{std::int64_t{c->system_type}, std::int64_t{c->system_address}, std::int64_t{c->component_type},
          std::int64_t{c->address}, std::int64_t{code->type}, clamp_i16(r.value * code->factor)},
         gb26875::local_time_label(r.time + clock_offset)});
  }
  return out;
}

}  // namespace firegate
