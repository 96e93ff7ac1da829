#include "payloads.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <ctime>

namespace firegate {

std::string iso8601(clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm local{};
  localtime_r(&secs, &local);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &local);
  const long offset_min = local.tm_gmtoff / 60;
  const char sign = offset_min < 0 ? '-' : '+';
  const long abs_min = offset_min < 0 ? -offset_min : offset_min;
  return fmt::format("{}.{:03}{}{:02}:{:02}", date, ms % 1000, sign, abs_min / 60, abs_min % 60);
}

std::string topic_for(const config::gateway_file& cfg, std::string_view kind) {
  return fmt::format("{}/{}/{}/{}", cfg.mqtt.topic_prefix, cfg.site.id, cfg.gateway.id, kind);
}

namespace {

nlohmann::json contact_json(const config::contact& c) {
  return {{"name", c.name}, {"phone", c.phone}};
}

std::string headline(const event& e, const config::device_config* d, const config::site_config& site) {
  const std::string where = d ? fmt::format("{} ({})", d->location, d->name) : e.device;
  switch (e.kind) {
    case event_kind::fire_alarm:
      return fmt::format("FIRE ALARM at {}: {}, {}", site.name, where, e.detail);
    case event_kind::fire_recovery:
      return fmt::format("Fire alarm cleared at {}: {}", site.name, where);
    case event_kind::device_offline:
      return fmt::format("Device offline at {}: {}", site.name, where);
    case event_kind::device_online:
      return fmt::format("Device back online at {}: {}", site.name, where);
  }
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
      {"category", category_of(e.kind)},
      {"severity", severity_of(e.kind)},
      {"time", iso8601(e.time)},
      {"summary", headline(e, device, cfg.site)},
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
      {"confirmation", "unconfirmed"},
  };
  if (device != nullptr) {
    j["device"]["location"] = device->location;
    j["device"]["description"] = device->description;
    j["device"]["bus"] = device->bus;
  }
  if (!e.point.empty()) {
    j["point"] = e.point;
    j["value"] = e.value;
    j["unit"] = e.unit;
  }
  if (!e.alarm_id.empty()) j["alarm_id"] = e.alarm_id;
  return j.dump();
}

std::vector<std::string> telemetry_messages(std::span<const reading> readings, const config::gateway_file& cfg,
                                            std::size_t max_polls) {
  std::vector<std::string> out;
  nlohmann::json polls = nlohmann::json::array();
  std::string id;
  const auto emit = [&] {
    if (polls.empty()) return;
    nlohmann::json j{{"schema", "firegate.telemetry/2"},
                     {"id", std::move(id)},
                     {"gateway", cfg.gateway.id},
                     {"polls", std::move(polls)}};
    out.push_back(j.dump());
    polls = nlohmann::json::array();
  };
  // A poll is a run of readings of one device with one time (drivers report them so).
  for (std::size_t i = 0; i < readings.size();) {
    const auto& first = readings[i];
    nlohmann::json points = nlohmann::json::object();
    for (; i < readings.size() && readings[i].device == first.device && readings[i].time == first.time; ++i) {
      const auto& r = readings[i];
      points[r.point] = {
          {"value", r.value}, {"unit", r.unit}, {"quality", r.q == quality::good ? "good" : "bad"}};
    }
    if (polls.empty()) {
      // The first poll names the message: a device has one poll a millisecond at most.
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(first.time.time_since_epoch()).count();
      id = fmt::format("{}:{}:{}", cfg.gateway.id, first.device, ms);
    }
    polls.push_back({{"device", first.device}, {"time", iso8601(first.time)}, {"points", std::move(points)}});
    if (polls.size() >= max_polls) emit();
  }
  emit();
  return out;
}

}  // namespace firegate
