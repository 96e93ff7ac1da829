#include "stored_event.hpp"

#include "domain/event_record.hpp"
#include "domain/time_text.hpp"

#include <nlohmann/json.hpp>

#include <limits>

namespace firegate {
using nlohmann::json;

namespace {

double number_at(const json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end()) return 0;
  return it->is_number() ? it->get<double>() : std::numeric_limits<double>::quiet_NaN();
}

/// A count: an integer that fits an unsigned, else 0 (a damaged message loses the count, not the
/// event; no number is cast out of range).
unsigned count_at(const json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number_unsigned()) return 0;
  const auto v = it->get<std::uint64_t>();
  return v > std::numeric_limits<unsigned>::max() ? 0 : static_cast<unsigned>(v);
}

std::optional<clock::time_point> time_at(const json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return std::nullopt;
  return parse_iso8601(it->get<std::string>());
}

/// A firegate.event/1 message (what firegated before records queued): the facts it carries.
std::optional<event> from_message(const json& j) {
  try {
    if (j.value("schema", std::string()) != "firegate.event/1") return std::nullopt;
    event e;
    const auto kind = parse_event_kind(j.at("type").get<std::string>());
    if (!kind) return std::nullopt;
    e.kind = *kind;
    e.id = j.at("id").get<std::string>();
    if (const auto it = j.find("seq"); it != j.end() && it->is_number_unsigned())
      e.seq = it->get<std::uint64_t>();
    e.device = j.at("device").at("name").get<std::string>();
    e.time = time_at(j, "time").value_or(clock::now());
    e.detail = j.value("detail", std::string());
    e.test = j.value("test", false);
    if (const auto c = j.value("confirmation", std::string()); c != "unconfirmed") e.verdict = c;
    // Written as the alarm's time where it had none of its own: equal then, and read back as none.
    if (const auto first = time_at(j, "first_time"); first && *first != time_at(j, "last_change")) {
      e.first_time = first;
    }
    e.actor = j.value("actor", std::string());
    e.repeat = count_at(j, "repeat");
    e.until = time_at(j, "until");
    e.false_alarms_today = count_at(j, "false_alarms_today");
    e.point = j.value("point", std::string());
    e.value = number_at(j, "value");
    e.unit = j.value("unit", std::string());
    e.value_label = j.value("value_label", std::string());
    if (j.contains("configuration") && j["configuration"].is_object()) {
      const auto& c = j["configuration"];
      e.configuration =
          config_change_info{c.value("revision", std::string()), c.value("previous", std::string()),
                             c.value("diff", std::string())};
    }
    if (const auto it = j.find("evidence"); it != j.end() && it->is_array()) {
      for (const auto& x : *it) {
        e.evidence.push_back({x.value("name", std::string()), number_at(x, "value"),
                              x.value("unit", std::string()), x.value("label", std::string())});
      }
    }
    e.rule = j.value("rule", std::string());
    if (j.contains("threshold")) e.threshold = number_at(j, "threshold");
    if (const auto it = j.find("device_code"); it != j.end() && it->is_number_integer()) {
      e.device_code = it->get<std::int64_t>();
    }
    e.alarm_id = j.value("alarm_id", std::string());
    if (const auto it = j.find("bus"); it != j.end() && it->is_object()) {
      e.bus = bus_info{it->value("address", std::string()), it->value("failed", std::string()),
                       it->value("devices", std::vector<std::string>())};
    }
    if (const auto it = j.find("clock_synchronised"); it != j.end() && it->is_boolean())
      e.clock_synchronised = it->get<bool>();
    e.recovered = j.value("recovered", false);
    return e;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

}  // namespace

std::optional<event> stored_event(std::string_view payload) {
  if (auto e = parse_record(payload)) return e;
  const auto j = json::parse(payload, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  return from_message(j);
}

}  // namespace firegate
