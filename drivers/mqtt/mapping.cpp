#include "mapping.hpp"

#include "../driver.hpp"

#include "config/alarm_rules.hpp"
#include "config/report_config.hpp"
#include "domain/time_text.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <charconv>
#include <cmath>
#include <set>

namespace firegate::mqtt_ingest {
namespace {

using json = nlohmann::json;

std::vector<std::string> split(std::string_view text, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const auto at = text.find(sep, start);
    out.emplace_back(text.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    if (at == std::string_view::npos) return out;
    start = at + 1;
  }
}

/// The value at `path` in `doc`, or null.
const json* at_path(const json& doc, const std::vector<std::string>& path) {
  const json* at = &doc;
  for (const auto& key : path) {
    if (!at->is_object()) return nullptr;
    const auto it = at->find(key);
    if (it == at->end()) return nullptr;
    at = &*it;
  }
  return at;
}

std::optional<double> as_number(const json& v) {
  if (v.is_number()) return v.get<double>();
  if (v.is_boolean()) return v.get<bool>() ? 1.0 : 0.0;
  if (v.is_string()) {
    // Some platforms send numbers as text ("87").
    const auto& s = v.get_ref<const std::string&>();
    double d = 0;
    const auto* end = s.data() + s.size();
    if (!s.empty() && std::from_chars(s.data(), end, d).ptr == end && std::isfinite(d)) return d;
  }
  return std::nullopt;
}

std::optional<double> as_boolean(const json& v) {
  if (v.is_boolean()) return v.get<bool>() ? 1.0 : 0.0;
  if (v.is_number_integer() || v.is_number_unsigned()) {
    const auto i = v.get<std::int64_t>();
    if (i == 0 || i == 1) return static_cast<double>(i);
  }
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    if (s == "true" || s == "ON" || s == "on" || s == "1") return 1.0;
    if (s == "false" || s == "OFF" || s == "off" || s == "0") return 0.0;
  }
  return std::nullopt;
}

std::string dotted(const std::vector<std::string>& path) {
  std::string out;
  for (const auto& p : path) out += (out.empty() ? "" : ".") + p;
  return out;
}

/// A device id as the configuration can name it: 1–64 printable characters, no spaces.
bool usable_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char ch : id) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7F) return false;
  }
  return true;
}

}  // namespace

std::string topic_pattern::filter() const {
  std::string out;
  for (std::size_t i = 0; i < levels.size(); ++i) {
    if (i > 0) out += '/';
    out += capture && *capture == i ? std::string("+") : levels[i];
  }
  return out;
}

std::optional<topic_pattern> parse_topic_pattern(std::string_view text, std::string& error) {
  topic_pattern p;
  if (text.empty()) {
    error = "the topic pattern is empty";
    return std::nullopt;
  }
  p.levels = split(text, '/');
  for (std::size_t i = 0; i < p.levels.size(); ++i) {
    const auto& l = p.levels[i];
    if (l == "#") {
      if (i + 1 != p.levels.size()) {
        error = "'#' may only be the last level";
        return std::nullopt;
      }
    } else if (!l.empty() && l[0] == '+') {
      if (l.size() > 1) {
        if (p.capture) {
          error = "only one level may capture the device id";
          return std::nullopt;
        }
        p.capture = i;
      }
    } else if (l.find_first_of("+#") != std::string::npos) {
      error = fmt::format("level \"{}\": a wildcard fills a whole level", l);
      return std::nullopt;
    }
  }
  return p;
}

std::optional<std::string> match_topic(const topic_pattern& pattern, std::string_view topic) {
  const auto levels = split(topic, '/');
  std::string id;
  for (std::size_t i = 0; i < pattern.levels.size(); ++i) {
    const auto& want = pattern.levels[i];
    if (want == "#") return id;  // the rest, including none
    if (i >= levels.size()) return std::nullopt;
    if (!want.empty() && want[0] == '+') {
      if (pattern.capture && *pattern.capture == i) id = levels[i];
      continue;
    }
    if (want != levels[i]) return std::nullopt;
  }
  if (levels.size() != pattern.levels.size()) return std::nullopt;
  return id;
}

std::optional<clock::time_point> parse_message_time(const json& v) {
  if (v.is_string()) {
    if (auto t = parse_iso8601(v.get_ref<const std::string&>())) return t;
  }
  const auto n = v.is_boolean() ? std::nullopt : as_number(v);
  if (!n || *n <= 0 || *n > 1e14) return std::nullopt;
  // Seconds until the year 5138; beyond that it is milliseconds.
  const auto ms = static_cast<std::int64_t>(std::floor(*n >= 1e11 ? *n : *n * 1000));
  return clock::time_point(std::chrono::milliseconds(ms));
}

std::optional<decoded_message> decode(const ingest_profile& profile, std::string_view topic,
                                      std::string_view payload, clock::time_point time, std::string& error) {
  if (payload.size() > max_payload_bytes) {
    error = fmt::format("{} bytes; at most {} are taken", payload.size(), max_payload_bytes);
    return std::nullopt;
  }
  auto id = match_topic(profile.topic, topic);
  if (!id) {
    error = fmt::format("topic {} does not match {}", topic, profile.topic.filter());
    return std::nullopt;
  }
  const auto doc = json::parse(payload, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    error = "the payload is not a JSON object";
    return std::nullopt;
  }
  decoded_message out;
  if (!profile.id_path.empty()) {
    const auto* v = at_path(doc, profile.id_path);
    if (v && v->is_string()) {
      *id = v->get<std::string>();
    } else if (v && (v->is_number_integer() || v->is_number_unsigned())) {
      *id = v->dump();
    } else {
      error = fmt::format("no device id: field \"{}\" is missing or not a string", dotted(profile.id_path));
      return std::nullopt;
    }
  }
  if (!usable_id(*id)) {
    error = "the device id is empty, longer than 64 characters or has spaces or control characters";
    return std::nullopt;
  }
  out.device_id = std::move(*id);
  if (!profile.sequence_path.empty()) {
    if (const auto* v = at_path(doc, profile.sequence_path)) out.sequence = as_number(*v);
  }
  if (!profile.time_path.empty()) {
    if (const auto* v = at_path(doc, profile.time_path); v && !v->is_null()) {
      const auto sent = parse_message_time(*v);
      if (!sent) {
        out.problems.push_back(
            fmt::format("{}: {} is not a time (seconds or milliseconds since 1970, or ISO "
                        "8601 with its zone); the arrival time is used",
                        dotted(profile.time_path), v->dump().substr(0, 40)));
      } else if (*sent > time + std::chrono::minutes(1) || *sent < time - std::chrono::hours(24 * 7)) {
        out.problems.push_back(fmt::format(
            "{}: {} is {} the gateway's clock; the arrival time is used", dotted(profile.time_path),
            v->dump().substr(0, 40), *sent > time ? "over a minute ahead of" : "over seven days behind"));
      } else {
        out.sent = sent;
        time = *sent;
      }
    }
  }
  for (const auto& p : profile.points) {
    const auto* v = at_path(doc, p.path);
    if (v == nullptr || v->is_null()) continue;  // not in this message
    reading r;
    r.point = p.name;
    r.unit = p.unit;
    r.time = time;
    const auto value = p.type == field_type::boolean ? as_boolean(*v) : as_number(*v);
    if (!value) {
      r.q = quality::bad;
      out.problems.push_back(fmt::format("{}: {} is not a {}", dotted(p.path), v->dump().substr(0, 40),
                                         p.type == field_type::boolean ? "true/false" : "number"));
    } else {
      r.value = *value * p.scale + p.offset;
      if (!p.labels.empty() && !config::has_label(p.labels, *value)) {
        out.problems.push_back(
            fmt::format("{}: code {} is not in the profile's table", dotted(p.path), *value));
      }
    }
    out.readings.push_back(std::move(r));
  }
  return out;
}

std::vector<alarm_rule> builtin_rules() {
  auto rule = [](std::string_view point, std::string text) {
    alarm_rule r;
    r.name = std::string(point);
    r.point = std::string(point);
    r.category = alarm_category::fault;
    r.text = std::move(text);
    r.condition.kind = condition_kind::equals;
    r.condition.values = {1};
    return r;
  };
  return {rule(flood_point,
               "sends more messages than its rate limit: the excess is dropped (the latest state is kept); "
               "check the sensor or its bridge"),
          rule(unreadable_point,
               "sends messages firegate cannot read (not JSON, too large, or a field of the wrong type); "
               "check the sensor's firmware and its profile")};
}

std::optional<ingest_profile> parse_ingest_profile(config::config_node& root) {
  const auto errors_before = root.error_count();
  ingest_profile profile;
  bool ok = true;
  auto name =
      root.get_string("name", config::presence::required, "name the device type, such as \"ZB-SMOKE\"");
  ok &= name.has_value();
  profile.name = name.value_or("");
  profile.description = root.get_string_or("description", "");
  if (auto topic = root.get_string("topic", config::presence::required,
                                   "give the topic pattern, such as \"zigbee2mqtt/+id\"")) {
    std::string why;
    if (auto parsed = parse_topic_pattern(*topic, why)) {
      profile.topic = std::move(*parsed);
    } else {
      root.error("topic", why);
      ok = false;
    }
  } else {
    ok = false;
  }
  if (auto id = root.get_string_or("id_field", ""); !id.empty()) profile.id_path = split(id, '.');
  if (auto seq = root.get_string_or("sequence_field", ""); !seq.empty())
    profile.sequence_path = split(seq, '.');
  if (auto t = root.get_string_or("time_field", ""); !t.empty()) profile.time_path = split(t, '.');
  // Each getter gives nullopt only for a value present and wrong (the error is on the node).
  const auto window = root.get_number("sequence_window", 0, 1e12, 1000);
  ok &= window.has_value();
  profile.sequence_window = window.value_or(1000);
  if (ok && !profile.topic.capture && profile.id_path.empty()) {
    root.error("topic",
               "the device id comes from the topic (a named level such as +id) or the payload "
               "(id_field); give one");
    ok = false;
  }
  const auto offline = root.get_integer("offline_after_s", 10, 7 * 86400, 3600);
  ok &= offline.has_value();
  profile.offline_after = std::chrono::seconds(offline.value_or(3600));
  // The profile's report strategy ([report]), which each point's own `report` keys change.
  report_policy report;
  ok &= config::parse_point_report(root, report);
  std::set<std::string, std::less<>> names;
  for (auto& n : root.get_table_array("points")) {
    field_point p;
    p.report = report;
    auto point_name = n.get_string("name", config::presence::required, "name the point, such as \"smoke\"");
    if (point_name && !names.insert(*point_name).second) {
      n.error("name", fmt::format("\"{}\" is used by another point of this profile", *point_name));
      ok = false;
    }
    if (point_name && (*point_name == flood_point || *point_name == unreadable_point)) {
      n.error("name", fmt::format("\"{}\" is a point the driver adds to every device; choose another name",
                                  *point_name));
      ok = false;
    }
    p.name = point_name.value_or("");
    auto field =
        n.get_string("field", config::presence::required, "give the JSON field, such as \"battery\"");
    p.path = split(field.value_or(""), '.');
    const auto type = n.get_enum_or("type", {"number", "bool"}, "number");
    p.type = type == "bool" ? field_type::boolean : field_type::number;
    const auto scale = n.get_number("scale", -1e9, 1e9, 1.0);
    const auto offset = n.get_number("offset", -1e9, 1e9, 0.0);
    ok &= scale.has_value() && offset.has_value();
    p.scale = scale.value_or(1.0);
    p.offset = offset.value_or(0.0);
    p.unit = n.get_string_or("unit", "");
    ok &= config::get_labels(n, p.labels);
    ok &= config::parse_point_report(n, p.report);
    n.finish();
    ok &= point_name.has_value() && field.has_value() && type.has_value();
    profile.points.push_back(std::move(p));
  }
  if (profile.points.empty()) {
    root.error("points", "no [[points]]: a message would give nothing");
    ok = false;
  }
  ok &= config::parse_alarm_rules(root, names, profile.rules);
  ok &= config::parse_uplink_annotations(root, names, profile.annotations);
  root.finish();
  // Any error in this profile, an unknown key at any depth included, and it is not a profile.
  if (!ok || root.error_count() != errors_before) return std::nullopt;
  // Wireless sensors are only listened to: nothing to write. The driver adds two points of its own.
  profile.described = describe_model(profile, [](model_description& m) {
    // Counts the driver keeps: sent when they change (and hourly), not every message.
    const report_policy on_change{report_policy::mode::change, 0, false, {}, std::chrono::hours(1)};
    for (const auto point : {flood_point, unreadable_point})
      m.points.push_back({std::string(point), "", {}, on_change});
  });
  return profile;
}

std::map<std::string, ingest_profile, std::less<>> load_ingest_profiles(
    const std::vector<std::filesystem::path>& folders, config::config_errors& errors) {
  std::map<std::string, ingest_profile, std::less<>> library;
  config::for_each_profile_folder(folders, errors, "mqtt/*.toml", [&](const std::filesystem::path& dir) {
    std::map<std::string, ingest_profile, std::less<>> own;
    config::for_each_toml(dir, errors, "mqtt/*.toml", [&](config::config_node& node) {
      if (auto profile = parse_ingest_profile(node)) {
        auto name = profile->name;
        if (!own.emplace(name, std::move(*profile)).second) {
          errors.add(0, "name", fmt::format("profile \"{}\" is defined twice in {}", name, dir.string()));
        }
      }
    });
    for (auto& [name, profile] : own) library.insert_or_assign(name, std::move(profile));
  });
  return library;
}

std::map<std::string, ingest_profile, std::less<>> load_ingest_profiles(const std::filesystem::path& dir,
                                                                        config::config_errors& errors) {
  return load_ingest_profiles(std::vector<std::filesystem::path>{dir}, errors);
}

}  // namespace firegate::mqtt_ingest
