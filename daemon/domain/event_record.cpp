#include "event_record.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>

namespace firegate {
using nlohmann::json;

namespace {

std::int64_t ticks(clock::time_point t) {
  return static_cast<std::int64_t>(t.time_since_epoch().count());
}

/// An integer field, refused (json::type_error) when it is not an integer that fits `T`: a damaged
/// record must not be read as a number cast out of range.
template <class T>
T integer(const json& j) {
  if (!j.is_number_integer()) throw json::type_error::create(302, "not an integer", &j);
  if (j.is_number_unsigned()) {
    const auto v = j.get<std::uint64_t>();
    if (v > static_cast<std::uint64_t>(std::numeric_limits<T>::max()))
      throw json::type_error::create(302, "out of range", &j);
    return static_cast<T>(v);
  }
  const auto v = j.get<std::int64_t>();
  if (v < static_cast<std::int64_t>(std::numeric_limits<T>::min()) ||
      (v > 0 && static_cast<std::uint64_t>(v) > static_cast<std::uint64_t>(std::numeric_limits<T>::max())))
    throw json::type_error::create(302, "out of range", &j);
  return static_cast<T>(v);
}

template <class T>
T integer_at(const json& j, const char* key) {
  const auto it = j.find(key);
  return it == j.end() ? T{0} : integer<T>(*it);
}

clock::time_point time_of(const json& j) {
  return clock::time_point(clock::duration(integer<std::int64_t>(j)));
}

/// A value as JSON: JSON has no NaN or infinity, so those are null (a sensor may send them).
json number(double v) {
  return std::isfinite(v) ? json(v) : json(nullptr);
}

double number_at(const json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end()) return 0;
  if (it->is_null()) return std::numeric_limits<double>::quiet_NaN();
  if (!it->is_number()) throw json::type_error::create(302, "not a number", &*it);
  return it->get<double>();
}

}  // namespace

std::string to_record(const event& e) {
  json j{{"record", event_record_schema}, {"id", e.id},         {"seq", e.seq},
         {"kind", to_string(e.kind)},     {"device", e.device}, {"time", ticks(e.time)}};
  if (!e.point.empty()) j["point"] = e.point;
  j["value"] = number(e.value);
  if (!e.unit.empty()) j["unit"] = e.unit;
  if (!e.alarm_id.empty()) j["alarm_id"] = e.alarm_id;
  if (!e.detail.empty()) j["detail"] = e.detail;
  if (!e.rule.empty()) j["rule"] = e.rule;
  if (e.threshold) j["threshold"] = number(*e.threshold);
  if (e.device_code) j["device_code"] = *e.device_code;
  if (e.test) j["test"] = true;
  if (e.first_time) j["first_time"] = ticks(*e.first_time);
  if (!e.verdict.empty()) j["verdict"] = e.verdict;
  if (!e.actor.empty()) j["actor"] = e.actor;
  if (e.repeat != 0) j["repeat"] = e.repeat;
  if (e.until) j["until"] = ticks(*e.until);
  if (e.false_alarms_today != 0) j["false_alarms_today"] = e.false_alarms_today;
  if (e.bus) j["bus"] = {{"address", e.bus->address}, {"failed", e.bus->failed}, {"devices", e.bus->devices}};
  if (!e.value_label.empty()) j["value_label"] = e.value_label;
  if (e.configuration) {
    j["configuration"] = {{"revision", e.configuration->revision},
                          {"previous", e.configuration->previous},
                          {"diff", e.configuration->diff}};
  }
  if (!e.evidence.empty()) {
    auto& list = j["evidence"] = json::array();
    for (const auto& x : e.evidence) {
      list.push_back({{"point", x.point}, {"value", number(x.value)}, {"unit", x.unit}, {"label", x.label}});
    }
  }
  if (e.clock_synchronised) j["clock_synchronised"] = *e.clock_synchronised;
  if (e.recovered) j["recovered"] = true;
  // Text that is not UTF-8 (a sensor's bytes in a detail) is replaced, never thrown: the event is kept.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::optional<event> parse_record(std::string_view text) {
  const auto j = json::parse(text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  try {
    if (j.value("record", std::string()) != event_record_schema) return std::nullopt;
    event e;
    const auto kind = parse_event_kind(j.at("kind").get<std::string>());
    if (!kind) return std::nullopt;
    e.kind = *kind;
    e.id = j.at("id").get<std::string>();
    e.seq = integer<std::uint64_t>(j.at("seq"));
    e.device = j.at("device").get<std::string>();
    e.time = time_of(j.at("time"));
    e.point = j.value("point", std::string());
    e.value = number_at(j, "value");
    e.unit = j.value("unit", std::string());
    e.alarm_id = j.value("alarm_id", std::string());
    e.detail = j.value("detail", std::string());
    e.rule = j.value("rule", std::string());
    if (j.contains("threshold")) e.threshold = number_at(j, "threshold");
    if (j.contains("device_code")) e.device_code = integer<std::int64_t>(j["device_code"]);
    e.test = j.value("test", false);
    if (j.contains("first_time")) e.first_time = time_of(j["first_time"]);
    e.verdict = j.value("verdict", std::string());
    e.actor = j.value("actor", std::string());
    e.repeat = integer_at<unsigned>(j, "repeat");
    if (j.contains("until")) e.until = time_of(j["until"]);
    e.false_alarms_today = integer_at<unsigned>(j, "false_alarms_today");
    if (j.contains("bus")) {
      const auto& b = j["bus"];
      e.bus = bus_info{b.value("address", std::string()), b.value("failed", std::string()),
                       b.value("devices", std::vector<std::string>())};
    }
    e.value_label = j.value("value_label", std::string());
    if (j.contains("configuration")) {
      const auto& c = j["configuration"];
      e.configuration =
          config_change_info{c.value("revision", std::string()), c.value("previous", std::string()),
                             c.value("diff", std::string())};
    }
    if (j.contains("evidence")) {
      for (const auto& x : j["evidence"]) {
        e.evidence.push_back({x.value("point", std::string()), number_at(x, "value"),
                              x.value("unit", std::string()), x.value("label", std::string())});
      }
    }
    if (const auto it = j.find("clock_synchronised"); it != j.end()) e.clock_synchronised = it->get<bool>();
    e.recovered = j.value("recovered", false);
    return e;
  } catch (const json::exception&) {
    return std::nullopt;  // a field of the wrong type: not a record this reader can trust
  }
}

}  // namespace firegate
