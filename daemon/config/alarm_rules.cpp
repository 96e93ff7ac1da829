#include "alarm_rules.hpp"

#include "suggest.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <span>

namespace firegate::config {
namespace {

std::vector<std::string> names_of(std::span<const std::string_view> names) {
  return {names.begin(), names.end()};
}

/// The keys that only some kinds take, and which.
const std::map<std::string, std::vector<condition_kind>, std::less<>>& kind_keys() {
  static const std::map<std::string, std::vector<condition_kind>, std::less<>> keys{
      {"set", {condition_kind::high, condition_kind::low}},
      {"clear", {condition_kind::high, condition_kind::low}},
      {"set_min", {condition_kind::high, condition_kind::low}},
      {"set_max", {condition_kind::high, condition_kind::low}},
      {"values", {condition_kind::equals}},
      {"bit", {condition_kind::bit}},
      {"per_minute", {condition_kind::rate_of_rise}},
      {"window_ms", {condition_kind::rate_of_rise}},
      {"min_span_ms", {condition_kind::rate_of_rise}},
      {"after_ms", {condition_kind::stale}},
  };
  return keys;
}

/// set and clear of a high or low rule: clear on the safe side of set, set within its range.
bool check_threshold(config_node& n, const alarm_rule& r) {
  const auto& c = r.condition;
  bool ok = true;
  if (c.kind == condition_kind::high && c.clear > c.set) {
    n.error("clear",
            fmt::format("{} is above set = {}; a high alarm clears at or below its setting", c.clear, c.set));
    ok = false;
  }
  if (c.kind == condition_kind::low && c.clear < c.set) {
    n.error("clear",
            fmt::format("{} is below set = {}; a low alarm clears at or above its setting", c.clear, c.set));
    ok = false;
  }
  if ((r.set_min && c.set < *r.set_min) || (r.set_max && c.set > *r.set_max)) {
    n.error("set", fmt::format("{} is outside the device's setting range {}–{}", c.set,
                               r.set_min ? fmt::format("{}", *r.set_min) : "",
                               r.set_max ? fmt::format("{}", *r.set_max) : ""));
    ok = false;
  }
  return ok;
}

}  // namespace

std::optional<alarm_rule> parse_alarm_rule(config_node& n, const std::set<std::string, std::less<>>& points,
                                           std::set<std::string, std::less<>>& names) {
  alarm_rule r;
  bool ok = true;
  auto name = n.get_string("name", presence::required, "name the rule, such as \"leakage\"");
  if (name && !names.insert(*name).second) {
    n.error("name",
            fmt::format("\"{}\" is used by another rule of this profile; rule names are unique", *name));
    ok = false;
  }
  ok &= name.has_value();
  r.name = name.value_or("");
  auto point = n.get_string("point", presence::required, "name the [[points]] entry the rule watches");
  if (point && !points.contains(*point)) {
    n.error("point", fmt::format("\"{}\" is not a point of this profile", *point));
    ok = false;
  }
  ok &= point.has_value();
  r.point = point.value_or("");
  auto when = n.get_enum("when", presence::required, names_of(condition_kind_names));
  auto category = n.get_enum("category", presence::required, names_of(alarm_category_names));
  ok &= when.has_value() && category.has_value();
  if (!when || !category) {
    n.finish();
    return std::nullopt;
  }
  auto& c = r.condition;
  c.kind = static_cast<condition_kind>(
      std::find(std::begin(condition_kind_names), std::end(condition_kind_names), *when) -
      std::begin(condition_kind_names));
  r.category = static_cast<alarm_category>(
      std::find(std::begin(alarm_category_names), std::end(alarm_category_names), *category) -
      std::begin(alarm_category_names));
  for (const auto& [key, kinds] : kind_keys()) {
    if (n.contains(key) && std::find(kinds.begin(), kinds.end(), c.kind) == kinds.end()) {
      std::vector<std::string> allowed;
      for (auto k : kinds) allowed.emplace_back(to_string(k));
      n.error(key, fmt::format("does not apply to when = \"{}\"; it is for when = {}", *when,
                               fmt::join(allowed, " or ")));
      ok = false;
    }
  }
  r.latch = n.get_bool("latch", r.category == alarm_category::fire);
  r.text = n.get_string_or("text", "");
  if (n.contains("evidence")) {
    for (auto& e : n.get_string_array("evidence")) {
      if (!points.contains(e)) {
        const std::vector<std::string> known(points.begin(), points.end());
        n.error("evidence", fmt::format("\"{}\" is not a point of this profile;{} its points: {}", e,
                                        did_you_mean(e, known), fmt::join(known, ", ")));
        ok = false;
      } else if (std::find(r.evidence.begin(), r.evidence.end(), e) == r.evidence.end()) {
        r.evidence.push_back(std::move(e));
      }
    }
  }
  // The device's own output for the same condition and its own setting, where it has them: shown
  // beside the rule in force (firegatectl device), so a technician sees why the two disagree.
  for (const auto& [key, into] :
       {std::pair{"device_alarm", &r.device_alarm}, {"device_setting", &r.device_setting}}) {
    if (!n.contains(key)) continue;
    auto p = n.get_string(key, presence::required, "");
    if (p && !points.contains(*p)) {
      const std::vector<std::string> known(points.begin(), points.end());
      n.error(key, fmt::format("\"{}\" is not a point of this profile;{} its points: {}", *p,
                               did_you_mean(*p, known), fmt::join(known, ", ")));
      ok = false;
    } else if (p) {
      *into = *p;
    }
  }
  if (n.contains("code")) r.code = n.get_integer("code", 0, 999'999'999, std::nullopt);
  c.delay = std::chrono::milliseconds(n.get_integer("delay_ms", 0, 3'600'000, 0).value_or(0));
  c.samples = static_cast<unsigned>(n.get_integer("samples", 1, 100, 1).value_or(1));
  switch (c.kind) {
    case condition_kind::high:
    case condition_kind::low: {
      auto set = n.get_number("set", -1e9, 1e9, std::nullopt);
      ok &= set.has_value();
      c.set = set.value_or(0);
      c.clear = n.get_number("clear", -1e9, 1e9, c.set).value_or(c.set);
      if (n.contains("set_min")) r.set_min = n.get_number("set_min", -1e9, 1e9, std::nullopt);
      if (n.contains("set_max")) r.set_max = n.get_number("set_max", -1e9, 1e9, std::nullopt);
      if (set) ok &= check_threshold(n, r);
      break;
    }
    case condition_kind::equals: {
      for (auto v : n.get_integer_array("values")) c.values.push_back(static_cast<double>(v));
      if (c.values.empty()) {
        n.error("values", "missing; list the values that raise it, such as values = [1]");
        ok = false;
      }
      break;
    }
    case condition_kind::bit: {
      auto bit = n.get_integer("bit", 0, 63, std::nullopt);
      ok &= bit.has_value();
      c.bit = static_cast<unsigned>(bit.value_or(0));
      break;
    }
    case condition_kind::rate_of_rise: {
      auto per_minute = n.get_number("per_minute", 1e-9, 1e9, std::nullopt);
      ok &= per_minute.has_value();
      c.per_minute = per_minute.value_or(0);
      c.window =
          std::chrono::milliseconds(n.get_integer("window_ms", 1000, 3'600'000, 60000).value_or(60000));
      c.min_span =
          std::chrono::milliseconds(n.get_integer("min_span_ms", 0, 3'600'000, 10000).value_or(10000));
      if (c.min_span > c.window) {
        n.error("min_span_ms",
                fmt::format("{} is longer than window_ms = {}; a rate needs samples inside the window",
                            c.min_span.count(), c.window.count()));
        ok = false;
      }
      break;
    }
    case condition_kind::stale: {
      auto after = n.get_integer("after_ms", 1000, 86'400'000, std::nullopt);
      ok &= after.has_value();
      c.stale_after = std::chrono::milliseconds(after.value_or(0));
      break;
    }
    case condition_kind::bad_quality:
      break;
  }
  n.finish();
  return ok ? std::optional(std::move(r)) : std::nullopt;
}

void apply_rule_overrides(config_node& overrides, std::vector<alarm_rule>& rules) {
  for (const auto& key : overrides.keys()) {
    auto rule = std::find_if(rules.begin(), rules.end(), [&](const alarm_rule& r) { return r.name == key; });
    if (rule == rules.end()) {
      std::vector<std::string> known;
      for (const auto& r : rules) known.push_back(r.name);
      overrides.error(key, fmt::format("no rule \"{}\" in this device's profile; its rules are: {}", key,
                                       fmt::join(known, ", ")));
      continue;
    }
    auto n = overrides.get_table(key, presence::required);
    if (!n) continue;
    auto& c = rule->condition;
    rule->enabled = n->get_bool("enabled", rule->enabled);
    rule->latch = n->get_bool("latch", rule->latch);
    if (n->contains("delay_ms"))
      c.delay = std::chrono::milliseconds(n->get_integer("delay_ms", 0, 3'600'000, 0).value_or(0));
    if (n->contains("samples"))
      c.samples = static_cast<unsigned>(n->get_integer("samples", 1, 100, 1).value_or(1));
    if (c.kind == condition_kind::high || c.kind == condition_kind::low) {
      const bool had_hysteresis = c.clear != c.set;
      const double gap = c.set - c.clear;
      if (n->contains("set")) {
        c.set = n->get_number("set", -1e9, 1e9, c.set).value_or(c.set);
        // A new setting keeps the profile's hysteresis unless the site gives its own clear.
        c.clear = had_hysteresis ? c.set - gap : c.set;
      }
      if (n->contains("clear")) c.clear = n->get_number("clear", -1e9, 1e9, c.clear).value_or(c.clear);
      check_threshold(*n, *rule);
    } else {
      for (const char* k : {"set", "clear"}) {
        if (n->contains(k)) {
          n->get_number(k, -1e9, 1e9, 0);  // read, so that the one error below is the only one
          n->error(k, fmt::format("rule \"{}\" is when = \"{}\", which has no {}", rule->name,
                                  to_string(c.kind), k));
        }
      }
    }
    n->finish();
  }
}

bool parse_alarm_rules(config_node& root, const std::set<std::string, std::less<>>& points,
                       std::vector<alarm_rule>& out) {
  bool ok = true;
  std::set<std::string, std::less<>> names;
  for (auto& n : root.get_table_array("rules")) {
    if (auto r = parse_alarm_rule(n, points, names)) {
      out.push_back(std::move(*r));
    } else {
      ok = false;
    }
  }
  return ok;
}

bool parse_uplink_annotations(config_node& root, const std::set<std::string, std::less<>>& points,
                              std::map<std::string, annotation_table, std::less<>>& out) {
  auto n = root.get_table("gb26875", presence::optional);
  if (!n) return true;
  bool ok = true;
  auto& gb = out["gb26875"];
  const auto type = [&](config_node& node, std::string_view key, std::int64_t min) -> std::int64_t {
    const auto v = node.get_integer(key, min, 255, std::nullopt);
    ok &= v.has_value();
    return v.value_or(0);
  };
  if (n->contains("component_type")) gb["component_type"] = type(*n, "component_type", 1);
  if (auto by_point = n->get_table("points", presence::optional)) {
    for (const auto& name : by_point->keys()) {
      if (!points.contains(name)) {
        const std::vector<std::string> known(points.begin(), points.end());
        by_point->error(name, fmt::format("is not a point of this profile;{} its points: {}",
                                          did_you_mean(name, known), fmt::join(known, ", ")));
        ok = false;
        continue;
      }
      gb.emplace("point." + name, type(*by_point, name, 0));  // 0: not sent
    }
    by_point->finish();
  }
  n->finish();
  return ok;
}

}  // namespace firegate::config
