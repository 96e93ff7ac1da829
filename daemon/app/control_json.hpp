#pragma once
// JSON of the control API's answers (docs/control-api.md), shared by app/control_api.cpp and
// app/control_api_streams.cpp. Inside the application only.

#include "config/config.hpp"
#include "control/control_server.hpp"
#include "domain/event.hpp"
#include "domain/reading.hpp"
#include "uplink/mqtt/payloads.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace firegate::control_json {

using json = nlohmann::json;

/// Who did it, for an event: the login the kernel reports, and the name given when another.
inline std::string local_actor(const control::peer& p, const std::string& given) {
  if (given.empty() || given == p.user) return fmt::format("{} (firegatectl)", p.user);
  return fmt::format("{} (firegatectl, user {})", given, p.user);
}

/// A whole-number argument within [min, max], or `fallback` when absent (none: it must be given).
/// Anything else (a fraction, 1e300, a string, a number past the range) gives nullopt and says why
/// in `error`: never converted first and checked after (1e300 once became -2147483648).
inline std::optional<std::int64_t> whole_arg(const json& args, const char* key,
                                             std::optional<std::int64_t> fallback, std::int64_t min,
                                             std::int64_t max, std::string& error) {
  const auto it = args.find(key);
  if (it == args.end() || it->is_null()) {
    if (!fallback) error = fmt::format("\"{}\" is missing: a whole number {}–{}", key, min, max);
    return fallback;
  }
  const bool whole = it->is_number_integer() && !(it->is_number_unsigned() &&
                                                  it->get<std::uint64_t>() > static_cast<std::uint64_t>(max));
  if (whole) {
    const auto v = it->get<std::int64_t>();
    if (v >= min && v <= max) return v;
  }
  error = fmt::format("\"{}\" must be a whole number {}–{}, not {}", key, min, max, it->dump());
  return std::nullopt;
}

inline json time_or_null(const std::optional<clock::time_point>& t) {
  return t ? json(iso8601(*t)) : json(nullptr);
}

inline double seconds_since(clock::time_point t, clock::time_point now) {
  return std::chrono::duration<double>(now - t).count();
}

/// An open alarm for firegatectl; `value_label`: what its value means, where its profile says.
inline json alarm_json(const open_alarm& a, const config::device_config* d,
                       const std::string& value_label = {}) {
  json j{{"id", a.id},
         {"type", to_string(a.kind)},
         {"category", category_of(a.kind)},
         {"device", a.device},
         {"location", d ? d->location : ""},
         {"rule", a.rule},
         {"point", a.point},
         {"value", a.value},
         {"time", iso8601(a.time)},
         {"detail", a.detail},
         {"test", a.test},
         {"repeats", a.repeats}};
  if (!value_label.empty()) j["value_label"] = value_label;
  j["acknowledged"] = a.verdict.empty() ? json(nullptr) : json{{"verdict", a.verdict}, {"by", a.actor}};
  if (a.until) {
    j["until"] = iso8601(*a.until);
    j["by"] = a.actor;
  }
  return j;
}

inline json event_summary(const event& e) {
  json j{{"id", e.id},
         {"type", to_string(e.kind)},
         {"category", category_of(e.kind)},
         {"device", e.device},
         {"point", e.point},
         {"value", e.value},
         {"time", iso8601(e.time)},
         {"detail", e.detail},
         {"rule", e.rule},
         {"test", e.test}};
  if (e.seq != 0) j["seq"] = e.seq;  // given when stored: a command's reply comes first
  if (!e.alarm_id.empty()) j["alarm_id"] = e.alarm_id;
  if (!e.actor.empty()) j["by"] = e.actor;
  if (!e.verdict.empty()) j["verdict"] = e.verdict;
  if (!e.value_label.empty()) j["value_label"] = e.value_label;
  if (!e.evidence.empty()) j["evidence"] = evidence_json(e.evidence);
  return j;
}

inline json reading_json(const reading& r, clock::time_point now) {
  return {{"device", r.device},
          {"point", r.point},
          {"value", r.value},
          {"unit", r.unit},
          {"quality", r.q == quality::good ? "good" : "bad"},
          {"time", iso8601(r.time)},
          {"age_s", seconds_since(r.time, now)}};
}

/// A driver's settings as `config show` gives them: the site file's keys under "settings", typed as
/// the file writes them, and what is derived from them under "derived" (information only).
inline void put_settings(json& into, const config::settings_list& list) {
  json keys = json::object(), derived = json::object();
  for (const auto& s : list) {
    json v;
    std::visit([&](const auto& x) { v = x; }, s.value);
    auto& into_keys = s.derived ? derived : keys;
    // "tls.ca_file": the key ca_file of the bus's [tls] table.
    if (const auto dot = s.key.find('.'); dot != std::string::npos) {
      into_keys[s.key.substr(0, dot)][s.key.substr(dot + 1)] = std::move(v);
    } else {
      into_keys[s.key] = std::move(v);
    }
  }
  into["settings"] = std::move(keys);
  if (!derived.empty()) into["derived"] = std::move(derived);
}

}  // namespace firegate::control_json
