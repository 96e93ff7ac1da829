// Alarm rules as profiles and site files state them: the shipped profiles' rules, every validation
// error with its key and fix, and a device's overrides applied to its profile's rules.

#include "config/alarm_rules.hpp"
#include "config/config_loader.hpp"
#include "driver.hpp"
#include "modbus/modbus_bus.hpp"
#include "modbus/modbus_driver.hpp"
#include "modbus/profile.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace firegate;
using namespace firegate::rules;

namespace {

struct parsed_rules {
  std::vector<alarm_rule> rules;
  config::config_errors errors;
};

/// [[rules]] entries over a profile with points "state" and "current".
parsed_rules parse_rules(const std::string& text) {
  parsed_rules out;
  const auto root = toml::parse(text, std::string_view("profile.toml"));
  config::config_node top(root, "", out.errors);
  const std::set<std::string, std::less<>> points{"state", "current"};
  std::set<std::string, std::less<>> names;
  for (auto& n : top.get_table_array("rules")) {
    if (auto r = config::parse_alarm_rule(n, points, names)) out.rules.push_back(std::move(*r));
  }
  return out;
}

const alarm_rule& rule_named(const std::vector<alarm_rule>& rules, const std::string& name) {
  auto it = std::find_if(rules.begin(), rules.end(), [&](const auto& r) { return r.name == name; });
  REQUIRE(it != rules.end());
  return *it;
}

}  // namespace

TEST_CASE("alarm rules: the shipped profiles' rules - what they watch and their defaults") {
  config::config_errors errors;
  const auto library = modbus::load_profiles(test::source_dir() + "/config/profiles/modbus", errors);
  INFO(errors.items().size());
  REQUIRE(errors.items().empty());
  const auto& sd1 = library.at("SD-1")->rules;
  CHECK(sd1.size() == 4);
  const auto& fire = rule_named(sd1, "fire");
  CHECK(fire.category == alarm_category::fire);
  CHECK(fire.latch);  // fire latches by default
  CHECK(fire.condition.kind == condition_kind::equals);
  CHECK(fire.condition.values == std::vector<double>{1});
  CHECK_FALSE(rule_named(sd1, "fault").latch);
  const auto& efd = library.at("EFD-4T")->rules;
  CHECK(efd.size() == 19);
  const auto& leakage = rule_named(efd, "leakage");
  CHECK(leakage.point == "residual_current");
  CHECK(leakage.condition.set == 300);  // GB 50116 §9.2.3 default
  CHECK(leakage.condition.clear == 270);
  CHECK(leakage.set_min == 20);
  CHECK(leakage.set_max == 1000);
  CHECK(leakage.code == 201);  // the maker's code rides on the alarm
  CHECK(rule_named(efd, "cable_2_over_temperature").code == 202);
  CHECK_FALSE(rule_named(efd, "arc_fault").code);
  CHECK(rule_named(efd, "cable_3_rising").condition.per_minute == 10);
  CHECK(library.at("GD-1")->rules.size() == 3);
  CHECK(library.at("GD-1-FLOAT-LE")->rules.size() == 3);
}

TEST_CASE("alarm rules: each mistake is named with its key and the fix") {
  struct row {
    std::string rule;  ///< the keys of one [[rules]] entry
    std::string path;
    std::string says;
  };
  const std::vector<row> rows{
      {R"(name = "a"
point = "voltage"
when = "high"
set = 1
category = "fault")",
       "rules[0].point", "\"voltage\" is not a point of this profile"},
      {R"(name = "a"
point = "current"
when = "hgh"
set = 1
category = "fault")",
       "rules[0].when", "high"},
      {R"(name = "a"
point = "current"
when = "high"
category = "fault")",
       "rules[0].set", "missing"},
      {R"(name = "a"
point = "current"
when = "high"
set = 300
clear = 310
category = "fire")",
       "rules[0].clear", "310 is above set = 300; a high alarm clears at or below its setting"},
      {R"(name = "a"
point = "current"
when = "low"
set = 20
clear = 19
category = "fault")",
       "rules[0].clear", "19 is below set = 20; a low alarm clears at or above its setting"},
      {R"(name = "a"
point = "current"
when = "high"
set = 1200
set_min = 20
set_max = 1000
category = "fire")",
       "rules[0].set", "1200 is outside the device's setting range 20–1000"},
      {R"(name = "a"
point = "state"
when = "equals"
values = [1]
set = 1
category = "fire")",
       "rules[0].set", "does not apply to when = \"equals\"; it is for when = high or low"},
      {R"(name = "a"
point = "state"
when = "equals"
category = "fire")",
       "rules[0].values", "list the values that raise it"},
      {R"(name = "a"
point = "current"
when = "rate_of_rise"
per_minute = 10
window_ms = 30000
min_span_ms = 40000
category = "supervisory")",
       "rules[0].min_span_ms", "40000 is longer than window_ms = 30000"},
      {R"(name = "a"
point = "state"
when = "bit"
category = "fault")",
       "rules[0].bit", "missing"},
      {R"(name = "a"
point = "state"
when = "equals"
values = [1]
category = "fire"
colour = "red")",
       "rules[0].colour", "unknown key"},
      {R"(name = "a"
point = "state"
when = "equals"
values = [1]
category = "fire"
evidence = ["smok"])",
       "rules[0].evidence", "\"smok\" is not a point of this profile"},
  };
  for (const auto& r : rows) {
    auto got = parse_rules("[[rules]]\n" + r.rule + "\n");
    INFO(r.rule);
    REQUIRE(got.errors.items().size() >= 1);
    CHECK(got.errors.items()[0].path == r.path);
    CHECK(got.errors.items()[0].message.find(r.says) != std::string::npos);
  }
  auto twice = parse_rules(R"([[rules]]
name = "a"
point = "state"
when = "equals"
values = [1]
category = "fire"
[[rules]]
name = "a"
point = "state"
when = "equals"
values = [2]
category = "fault"
)");
  REQUIRE(twice.errors.items().size() == 1);
  CHECK(twice.errors.items()[0].path == "rules[1].name");
  CHECK(twice.errors.items()[0].message.find("used by another rule") != std::string::npos);
}

TEST_CASE(
    "alarm rules: a device's overrides - the hysteresis follows a new setting - range and names checked") {
  const auto profile = parse_rules(R"([[rules]]
name = "leakage"
point = "current"
when = "high"
set = 300
clear = 270
set_min = 20
set_max = 1000
category = "fire"
[[rules]]
name = "fire"
point = "state"
when = "equals"
values = [1]
category = "fire"
)");
  REQUIRE(profile.rules.size() == 2);
  const auto apply = [&](const std::string& text) {
    parsed_rules out;
    out.rules = profile.rules;
    const auto root = toml::parse(text, std::string_view("site.toml"));
    config::config_node top(root, "devices[0]", out.errors);
    if (auto n = top.get_table("rules", config::presence::required))
      config::apply_rule_overrides(*n, out.rules);
    return out;
  };
  auto raised = apply("[rules.leakage]\nset = 500\n");
  CHECK(raised.errors.items().empty());
  CHECK(raised.rules[0].condition.set == 500);
  CHECK(raised.rules[0].condition.clear == 470);
  auto own_clear = apply("[rules.leakage]\nset = 500\nclear = 400\ndelay_ms = 5000\n");
  CHECK(own_clear.rules[0].condition.clear == 400);
  CHECK(own_clear.rules[0].condition.delay == std::chrono::seconds(5));
  auto off = apply("[rules.fire]\nenabled = false\n");
  CHECK_FALSE(off.rules[1].enabled);
  CHECK(off.rules[0].enabled);

  auto too_high = apply("[rules.leakage]\nset = 1500\n");
  REQUIRE(too_high.errors.items().size() == 1);
  CHECK(too_high.errors.items()[0].path == "devices[0].rules.leakage.set");
  CHECK(too_high.errors.items()[0].message.find("outside the device's setting range 20–1000") !=
        std::string::npos);
  auto unknown = apply("[rules.leakge]\nset = 400\n");
  REQUIRE(unknown.errors.items().size() == 1);
  CHECK(unknown.errors.items()[0].message ==
        "no rule \"leakge\" in this device's profile; its rules are: leakage, fire");
  auto no_set = apply("[rules.fire]\nset = 1\n");
  REQUIRE(no_set.errors.items().size() == 1);
  CHECK(no_set.errors.items()[0].message.find("has no set") != std::string::npos);
}

TEST_CASE("alarm rules: the example site's override reaches the device's settings") {
  auto r = config::load_config_file(test::source_dir() + "/config/firegate.toml", driver_parsers());
  INFO(r.error_text());
  REQUIRE(r.config);
  auto rtu = std::dynamic_pointer_cast<const modbus::modbus_rtu_settings>(r.config->buses[1].settings);
  REQUIRE(rtu);
  const auto& leakage = rule_named(*rtu->devices[0].rules, "leakage");
  CHECK(leakage.condition.set == 500);
  CHECK(leakage.condition.clear == 470);
  // The profile itself is unchanged: another device of it keeps 300 mA.
  CHECK(rule_named(rtu->devices[0].profile->rules, "leakage").condition.set == 300);
}
