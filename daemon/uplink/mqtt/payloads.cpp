#include "payloads.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <iterator>

namespace firegate {

std::string topic_for(const config::gateway_file& cfg, std::string_view kind) {
  return fmt::format("{}/{}/{}/{}", cfg.mqtt.topic_prefix, cfg.site.id, cfg.gateway.id, kind);
}

namespace {

nlohmann::json contact_json(const config::contact& c) {
  return {{"name", c.name}, {"phone", c.phone}};
}

/// The readings behind an alarm for its one-line summary: " (concentration 60 %LEL, high_alarm_setting
/// 50 %LEL)", labels where the profile names the value; "" without evidence.
std::string evidence_text(const event& e) {
  if (e.evidence.empty()) return {};
  std::vector<std::string> parts;
  for (const auto& x : e.evidence) {
    parts.push_back(fmt::format("{} {}{}{}", x.point,
                                x.label.empty() ? fmt::format("{:g}", x.value) : x.label,
                                x.unit.empty() ? "" : " ", x.unit));
  }
  return fmt::format(" ({})", fmt::join(parts, ", "));
}

std::string headline(const event& e, const config::device_config* d, const config::site_config& site) {
  // An event of no device is the gateway's own (its storage, its self-test).
  const std::string where = d                  ? fmt::format("{} ({})", d->location, d->name)
                            : e.device.empty() ? std::string("the gateway")
                                               : e.device;
  switch (e.kind) {
    case event_kind::fire_alarm:
      return fmt::format("FIRE ALARM at {}: {}, {}{}", site.name, where, e.detail, evidence_text(e));
    case event_kind::fire_recovery:
      return fmt::format("Fire alarm cleared at {}: {}", site.name, where);
    case event_kind::device_offline:
      return fmt::format("Device offline at {}: {}", site.name, where);
    case event_kind::device_online:
      return fmt::format("Device back online at {}: {}", site.name, where);
    case event_kind::storage_fault:
      return fmt::format("Gateway storage fault at {}: {}", site.name, e.detail);
    case event_kind::storage_recovery:
      return fmt::format("Gateway storage recovered at {}: {}", site.name, e.detail);
    case event_kind::storage_eviction:
      return fmt::format("Gateway storage full at {}: {}", site.name, e.detail);
    case event_kind::supervisory_alarm:
      return fmt::format("Supervisory alarm at {}: {}, {}{}", site.name, where, e.detail, evidence_text(e));
    case event_kind::supervisory_recovery:
      return fmt::format("Supervisory alarm cleared at {}: {}", site.name, where);
    case event_kind::device_fault:
      return fmt::format("Device fault at {}: {}, {}{}", site.name, where, e.detail, evidence_text(e));
    case event_kind::device_fault_recovery:
      return fmt::format("Device fault cleared at {}: {}", site.name, where);
    case event_kind::alarm_acknowledged:
      return fmt::format("Alarm acknowledged at {}: {}, {}", site.name, where, e.detail);
    case event_kind::alarm_escalation:
      return fmt::format("FIRE ALARM NOT ACKNOWLEDGED (repeat {}) at {}: {}, {}", e.repeat, site.name, where,
                         e.detail);
    case event_kind::device_shielded:
      return fmt::format("Device shielded at {}: {}, {}", site.name, where, e.detail);
    case event_kind::device_unshielded:
      return fmt::format("Device unshielded at {}: {}", site.name, where);
    case event_kind::test_mode_started:
      return fmt::format("Test mode started at {}: {}", site.name, where);
    case event_kind::test_mode_ended:
      return fmt::format("Test mode ended at {}: {}", site.name, where);
    case event_kind::linkage_done:
      return fmt::format("Linkage done at {}: {}, {}", site.name, where, e.detail);
    case event_kind::linkage_failed:
      return fmt::format("LINKAGE FAILED at {}: {}, {}", site.name, where, e.detail);
    case event_kind::linkage_overridden:
      return fmt::format("Linkage output overridden by hand at {}: {}, {}", site.name, where, e.detail);
    case event_kind::bus_offline:
      if (!e.bus) return fmt::format("Bus offline at {}: {}", site.name, e.device);
      return fmt::format("Bus offline at {}: {} at {}, {}; {} devices behind it unreachable", site.name,
                         e.device, e.bus->address, e.bus->failed, e.bus->devices.size());
    case event_kind::bus_online:
      return fmt::format("Bus back online at {}: {}{}", site.name, e.device,
                         e.bus ? " at " + e.bus->address : std::string());
    case event_kind::config_rejected:
      return fmt::format("Configuration refused at {}: the gateway runs an older one; {}", site.name,
                         e.detail);
    case event_kind::config_applied:
      return fmt::format("Configuration applied at {}: {}", site.name, e.detail);
    case event_kind::register_written:
      return fmt::format("Registers written by hand at {}: {}", site.name, e.detail);
    case event_kind::clock_sync_refused:
      return fmt::format("Clock synchronisation refused at {}: {}", site.name, e.detail);
    case event_kind::config_changed:
      return fmt::format("Configuration changed at {}: {}", site.name, e.detail);
    case event_kind::config_confirmed:
      return fmt::format("Configuration change confirmed at {}: {}", site.name, e.detail);
    case event_kind::config_rolled_back:
      return fmt::format("Configuration change rolled back at {}: {}", site.name, e.detail);
    case event_kind::clock_unsynchronised:
      return fmt::format("Gateway clock not synchronised at {}: {}", site.name, e.detail);
    case event_kind::clock_synchronised:
      return fmt::format("Gateway clock synchronised again at {}: {}", site.name, e.detail);
  }
  return {};
}

/// The alarm's state as of this event: what the control room's list shows.
std::string_view alarm_state(const event& e) {
  if (is_alarm(e.kind) || e.kind == event_kind::alarm_escalation) return "active";
  if (e.kind == event_kind::alarm_acknowledged) return "acknowledged";
  if (category_of(e.kind) == "recovery") return "cleared";
  return {};
}

}  // namespace

std::string event_json(const event& e, const config::gateway_file& cfg, const config::device_config* device) {
  nlohmann::json j{
      {"schema", "firegate.event/1"},
      {"id", e.id},
      {"seq", e.seq},
      {"gateway", cfg.gateway.id},
      {"type", to_string(e.kind)},
      // A test alarm is nothing to dispatch on: its category says so first.
      {"category", e.test ? std::string_view("test") : category_of(e.kind)},
      {"severity", e.test ? std::string_view("info") : severity_of(e.kind)},
      {"time", iso8601(e.time)},
      {"clock_synchronised",
       e.clock_synchronised ? nlohmann::json(*e.clock_synchronised) : nlohmann::json(nullptr)},
      {"summary", e.test ? "TEST: " + headline(e, device, cfg.site) : headline(e, device, cfg.site)},
      {"detail", e.detail},
      {"site",
       {{"id", cfg.site.id},
        {"name", cfg.site.name},
        {"address", cfg.site.address},
        {"category", cfg.site.category},
        {"latitude", cfg.site.latitude},
        {"longitude", cfg.site.longitude}}},
      {"contacts",
       {{"responsible", contact_json(cfg.site.responsible)}, {"backup", contact_json(cfg.site.backup)}}},
      {"device", {{"name", e.device}}},
      {"test", e.test},
  };
  if (const auto state = alarm_state(e); !state.empty()) {
    // About an alarm: how it stands and how the control room confirmed it.
    j["state"] = state;
    j["confirmation"] = e.verdict.empty() ? std::string("unconfirmed") : e.verdict;
    j["first_time"] = iso8601(e.first_time.value_or(e.time));
    j["last_change"] = iso8601(e.time);
  }
  if (!e.actor.empty()) j["actor"] = e.actor;
  if (e.repeat > 0) j["repeat"] = e.repeat;
  if (e.until) j["until"] = iso8601(*e.until);
  if (e.false_alarms_today > 0) j["false_alarms_today"] = e.false_alarms_today;
  if (e.configuration) {
    j["configuration"] = {{"revision", e.configuration->revision},
                          {"previous", e.configuration->previous},
                          {"diff", e.configuration->diff}};
  }
  if (device != nullptr) {
    j["device"]["location"] = device->location;
    j["device"]["description"] = device->description;
    j["device"]["bus"] = device->bus;
  }
  if (!e.point.empty()) {
    j["point"] = e.point;
    j["value"] = e.value;
    j["unit"] = e.unit;
    if (!e.value_label.empty()) j["value_label"] = e.value_label;
  }
  if (!e.evidence.empty()) j["evidence"] = evidence_json(e.evidence);
  if (!e.rule.empty()) j["rule"] = e.rule;
  if (e.threshold) j["threshold"] = *e.threshold;
  if (e.device_code) j["device_code"] = *e.device_code;
  if (!e.alarm_id.empty()) j["alarm_id"] = e.alarm_id;
  if (e.bus) {
    j["bus"] = {{"name", e.device}, {"address", e.bus->address}, {"devices", e.bus->devices}};
    if (!e.bus->failed.empty()) j["bus"]["failed"] = e.bus->failed;
  }
  if (e.recovered) j["recovered"] = true;
  // Text that is not UTF-8 is replaced (U+FFFD), never thrown: the alarm goes all the same.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

/// Appends `s` as a JSON string (RFC 8259 §7): quotes, backslashes and control characters escaped,
/// UTF-8 passed through.
void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (const char c : s) {
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", static_cast<unsigned>(c));
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

}  // namespace

std::vector<std::string> telemetry_messages(std::span<const reading> readings,
                                            const config::gateway_file& cfg, std::size_t max_polls) {
  return telemetry_messages(readings, cfg.gateway.id, max_polls);
}

std::vector<std::string> telemetry_messages(std::span<const reading> readings, const std::string& gateway_id,
                                            std::size_t max_polls) {
  // Written directly rather than through a JSON tree: this runs for every poll of the fleet, and
  // the tree's allocations were a tenth of the daemon's CPU at 1,000 devices (docs/performance.md).
  // tests/unit/test_payloads.cpp parses the result with nlohmann::json.
  std::vector<std::string> out;
  std::string message;
  std::size_t polls = 0;
  const auto emit = [&] {
    if (polls == 0) return;
    message.append("]}");
    out.push_back(std::move(message));
    message.clear();
    polls = 0;
  };
  // A poll is a run of readings of one device with one time (drivers report them so).
  for (std::size_t i = 0; i < readings.size();) {
    const auto& first = readings[i];
    if (polls == 0) {
      // The first poll names the message: a device has one poll a millisecond at most.
      const auto ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(first.time.time_since_epoch()).count();
      // About 48 bytes a reading with its share of the poll's header: a message written in one go
      // rather than regrown (a 200-poll message of ten-value polls is some 100 KB).
      message.reserve(
          std::min<std::size_t>(readings.size() - i, 10 * std::min<std::size_t>(max_polls, 2000)) * 48 + 256);
      message.append(R"({"schema":"firegate.telemetry/2","id":)");
      append_json_string(message, fmt::format("{}:{}:{}", gateway_id, first.device, ms));
      message.append(R"(,"gateway":)");
      append_json_string(message, gateway_id);
      message.append(R"(,"polls":[)");
    } else {
      message.push_back(',');
    }
    message.append(R"({"device":)");
    append_json_string(message, first.device);
    message.append(R"(,"time":)");
    append_json_string(message, iso8601(first.time));
    message.append(R"(,"points":{)");
    for (bool comma = false;
         i < readings.size() && readings[i].device == first.device && readings[i].time == first.time; ++i) {
      const auto& r = readings[i];
      if (comma) message.push_back(',');
      comma = true;
      append_json_string(message, r.point);
      if (std::isfinite(r.value)) {
        fmt::format_to(std::back_inserter(message), R"(:{{"value":{},"unit":)", r.value);
      } else {
        message.append(R"(:{"value":null,"unit":)");
      }
      append_json_string(message, r.unit);
      message.append(r.q == quality::good ? R"(,"quality":"good"})" : R"(,"quality":"bad"})");
    }
    message.append("}}");
    if (++polls >= max_polls) emit();
  }
  emit();
  return out;
}

namespace {

nlohmann::json status_head(const config::gateway_file& cfg, const std::string& id, clock::time_point time,
                           clock::time_point started, std::string_view state, std::string_view reason) {
  return {{"schema", "firegate.status/1"},
          {"id", id},
          {"gateway", cfg.gateway.id},
          {"site", cfg.site.id},
          {"site_name", cfg.site.name},
          {"state", state},
          {"reason", reason},
          {"time", iso8601(time)},
          {"started", iso8601(started)},
          {"version", FIREGATE_VERSION}};
}

}  // namespace

std::string status_json(const config::gateway_file& cfg, const gateway_health& h, std::string_view reason) {
  auto j = status_head(cfg, h.id, h.time, h.started, "online", reason);
  j["uptime_s"] = std::chrono::duration_cast<std::chrono::seconds>(h.time - h.started).count();
  j["outbox"] = {{"alarm", h.outbox[0]}, {"event", h.outbox[1]}, {"telemetry", h.outbox[2]}};
  j["devices"] = {{"total", h.devices},
                  {"online", h.devices - std::min(h.devices, h.devices_offline)},
                  {"offline", h.devices_offline}};
  j["alarms"] = {{"fire", h.alarms.fire},
                 {"supervisory", h.alarms.supervisory},
                 {"fault", h.alarms.fault},
                 {"unacknowledged", h.alarms.unacknowledged},
                 {"test", h.alarms.test}};
  j["shielded_devices"] = h.alarms.shielded;
  j["test_mode_devices"] = h.alarms.in_test_mode;
  j["storage"] = {{"state", h.storage}, {"faults", h.storage_faults}};
  j["uplink_connects"] = h.uplink_connects;
  j["configuration"] = configuration_json(h.config);
  j["clock"] = clock_json(h.wall_clock);
  return j.dump();
}

nlohmann::json evidence_json(const std::vector<evidence_item>& evidence) {
  auto out = nlohmann::json::array();
  for (const auto& x : evidence) {
    nlohmann::json j{{"name", x.point}, {"value", x.value}, {"unit", x.unit}};
    if (!x.label.empty()) j["label"] = x.label;
    out.push_back(std::move(j));
  }
  return out;
}

nlohmann::json configuration_json(const gateway_health::configuration& c) {
  nlohmann::json j{
      {"revision", c.revision.substr(0, 12)}, {"loaded", iso8601(c.loaded)}, {"rejected", nullptr}};
  if (c.rejected) j["rejected"] = {{"time", iso8601(*c.rejected)}, {"errors", c.errors}};
  j["source"] = c.source;
  j["pending"] = nullptr;
  if (!c.pending.empty() && c.pending_deadline)
    j["pending"] = {{"revision", c.pending.substr(0, 12)}, {"rolled_back_at", iso8601(*c.pending_deadline)}};
  return j;
}

nlohmann::json clock_json(const gateway_health::clock_health& c) {
  nlohmann::json j{
      {"synchronised", c.synchronised ? nlohmann::json(*c.synchronised) : nlohmann::json(nullptr)},
      {"max_error_ms", c.synchronised && c.max_error_us >= 0
                           ? nlohmann::json(static_cast<double>(c.max_error_us) / 1000.0)
                           : nlohmann::json(nullptr)},
      {"source", c.source},
      {"unsynchronised_since", nullptr},
      {"fault", c.fault.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.fault)},
      {"platform_offset_ms", nullptr}};
  if (c.unsynchronised_since) j["unsynchronised_since"] = iso8601(*c.unsynchronised_since);
  if (!c.error.empty()) j["error"] = c.error;
  if (c.platform_offset_ms && c.platform_measured) {
    j["platform_offset_ms"] = *c.platform_offset_ms;
    j["platform_measured"] = iso8601(*c.platform_measured);
  }
  return j;
}

std::string offline_json(const config::gateway_file& cfg, const std::string& id, clock::time_point time,
                         clock::time_point started, std::string_view reason) {
  return status_head(cfg, id, time, started, "offline", reason).dump();
}

}  // namespace firegate
