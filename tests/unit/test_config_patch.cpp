// Proves a remote patch of named keys changes exactly what it names in a site file, refuses what it
// cannot apply with a sentence naming the path, and that the change summary people read is exact.

#include "config/config_patch.hpp"

#include <toml++/toml.h>
#include <catch2/catch.hpp>

#include <string>

using namespace firegate::config;

namespace {

const std::string site = R"(
[gateway]
id = "gw-1"

[alarms]
escalate_after_s = 300

[uplink.mqtt]
host = "broker.example"

[[buses]]
name = "tcp-1"
driver = "modbus_tcp"

[[devices]]
name = "smoke-1"
bus = "tcp-1"
unit_id = 1

[[devices]]
name = "smoke-2"
bus = "tcp-1"
unit_id = 2
)";

/// The site file after `patch`, read back: the patch must apply.
toml::table patched(std::string_view patch) {
  const auto r = apply_patch(site, patch);
  INFO(r.error);
  REQUIRE(r.text);
  CHECK(r.error.empty());
  return toml::parse(*r.text);
}

/// Why `patch` is refused: it must be.
std::string refused(std::string_view patch, std::string_view site_text = site) {
  const auto r = apply_patch(site_text, patch);
  INFO(r.text.value_or(""));
  REQUIRE_FALSE(r.text);
  REQUIRE_FALSE(r.error.empty());
  return r.error;
}

toml::table& device(toml::table& root, std::size_t i) {
  return *root["devices"][i].as_table();
}

}  // namespace

TEST_CASE("config patch: set changes a threshold and nothing else", "[config][patch]") {
  auto expected = toml::parse(site);
  expected["alarms"].as_table()->insert_or_assign("escalate_after_s", 120);
  CHECK(patched(R"({"set": {"alarms.escalate_after_s": 120}})") == expected);
}

TEST_CASE("config patch: set addresses elements by name, and may change a type", "[config][patch]") {
  auto expected = toml::parse(site);
  device(expected, 1).insert_or_assign("unit_id", 7);
  expected["buses"][0].as_table()->insert_or_assign("host", "10.0.0.5");
  expected["gateway"].as_table()->insert_or_assign("id", 42);
  CHECK(patched(
            R"({"set": {"devices.smoke-2.unit_id": 7, "buses.tcp-1.host": "10.0.0.5", "gateway.id": 42}})") ==
        expected);
}

TEST_CASE("config patch: a device added and then set in one patch", "[config][patch]") {
  auto expected = toml::parse(site);
  expected["devices"].as_array()->push_back(toml::table{
      {"name", "heat-3"}, {"bus", "tcp-1"}, {"unit_id", 9}, {"rules", toml::table{{"above", 57.5}}}});
  const auto root = patched(R"({
    "set": {"devices.heat-3.unit_id": 9},
    "add": {"devices": [{"name": "heat-3", "bus": "tcp-1", "unit_id": 3, "rules": {"above": 57.5}}]}
  })");
  CHECK(root == expected);
  // The added element is a table of the array of tables, not an inline table in an array of values.
  CHECK(root["devices"].as_array()->is_array_of_tables());
}

TEST_CASE("config patch: a device removed", "[config][patch]") {
  auto expected = toml::parse(site);
  expected["devices"].as_array()->erase(expected["devices"].as_array()->cbegin());
  CHECK(patched(R"({"remove": ["devices.smoke-1"]})") == expected);
}

TEST_CASE("config patch: set creates a missing table", "[config][patch]") {
  auto expected = toml::parse(site);
  expected.insert("metrics", toml::table{{"enabled", true}, {"listen", toml::table{{"port", 9100}}}});
  CHECK(patched(R"({"set": {"metrics.enabled": true, "metrics.listen.port": 9100}})") == expected);
}

TEST_CASE("config patch: floats are written short unless that would change one", "[config][patch]") {
  const auto r = apply_patch(site, R"({"set": {"alarms.ratio": 0.1}})");
  REQUIRE(r.text);
  CHECK(r.text->find("ratio = 0.1\n") != std::string::npos);
  const auto exact = apply_patch(site, R"({"set": {"alarms.ratio": 0.1, "alarms.level": 1234567.25}})");
  REQUIRE(exact.text);
  CHECK(toml::parse(*exact.text)["alarms"]["level"].value<double>() == 1234567.25);
}

TEST_CASE("config patch: a patch that is not a JSON object is refused", "[config][patch]") {
  CHECK_THAT(refused("{\"set\": "), Catch::StartsWith("the patch is not JSON: parse error at line 1"));
  CHECK(refused("[1]") ==
        "the patch must be a JSON object with \"add\", \"set\" or \"remove\", not an array");
  CHECK_THAT(refused(R"({"set": [1]})"), Catch::Contains("\"set\" must be an object"));
}

TEST_CASE("config patch: an unknown member is refused with a suggestion", "[config][patch]") {
  CHECK(refused(R"({"sets": {"alarms.escalate_after_s": 1}})") ==
        "the patch has an unknown member \"sets\"; did you mean \"set\"? it may have: add, set, remove");
}

TEST_CASE("config patch: a path that is not a string is refused", "[config][patch]") {
  CHECK(refused(R"({"remove": ["alarms.escalate_after_s", 3]})") ==
        "remove[1] must be a \"dotted.path\" string, not a number");
}

TEST_CASE("config patch: null is refused, pointing to remove", "[config][patch]") {
  CHECK(refused(R"({"set": {"gateway.id": null}})") ==
        "set \"gateway.id\": null is not a TOML value; use \"remove\" to delete a key");
  CHECK_THAT(refused(R"({"set": {"gateway.tags": ["a", null]}})"),
             Catch::StartsWith("set \"gateway.tags\": the value holds a null"));
}

TEST_CASE("config patch: removing what does not exist names what does", "[config][patch]") {
  CHECK(refused(R"({"remove": ["devices.smoke-7"]})") ==
        "remove \"devices.smoke-7\": devices has no element named \"smoke-7\"; did you mean \"smoke-1\"? it "
        "has: "
        "smoke-1, smoke-2");
  CHECK(refused(R"({"remove": ["alarms.escalate_after"]})") ==
        "remove \"alarms.escalate_after\": alarms has no key \"escalate_after\"; did you mean "
        "\"escalate_after_s\"? it has: escalate_after_s");
  CHECK_THAT(refused(R"({"remove": ["metrics.enabled"]})"),
             Catch::StartsWith("remove \"metrics.enabled\": the site file has no key \"metrics\";"));
}

TEST_CASE("config patch: set does not create an array element, nor keys under a value", "[config][patch]") {
  CHECK(
      refused(R"({"set": {"devices.smoke-9.unit_id": 9}})") ==
      "set \"devices.smoke-9.unit_id\": devices has no element named \"smoke-9\"; did you mean \"smoke-1\"? "
      "it has: smoke-1, smoke-2");
  CHECK(refused(R"({"set": {"gateway.id.x": 1}})") ==
        "set \"gateway.id.x\": gateway.id is a string, which has no keys");
}

TEST_CASE("config patch: an empty path segment is refused", "[config][patch]") {
  for (const auto* path : {"alarms..x", ".alarms", "alarms.", ""}) {
    CAPTURE(path);
    const auto e = refused(std::string(R"({"set": {")") + path + R"(": 1}})");
    CHECK(e ==
          std::string("set \"") + path + "\": the path has an empty segment (a dot at an end, or two dots)");
  }
  CHECK_THAT(refused(R"({"remove": ["devices..unit_id"]})"),
             Catch::StartsWith("remove \"devices..unit_id\""));
}

TEST_CASE("config patch: add refuses a duplicate, a nameless element and an unknown list",
          "[config][patch]") {
  CHECK(refused(R"({"add": {"devices": [{"name": "smoke-2", "unit_id": 5}]}})") ==
        "add.devices[0]: devices already has an element named \"smoke-2\"");
  CHECK(refused(R"({"add": {"devices": [{"name": "a"}, {"name": "a"}]}})") ==
        "add.devices[1]: devices already has an element named \"a\"");
  CHECK(refused(R"({"add": {"buses": [{"driver": "modbus_tcp"}]}})") ==
        "add.buses[0] must be an object with a string \"name\"");
  CHECK(refused(R"({"add": {"buses": [{"name": 3}]}})") ==
        "add.buses[0] must be an object with a string \"name\"");
  CHECK(
      refused(R"({"add": {"linkages": [{"name": "x"}]}})") ==
      "add: the site file has no list \"linkages\"; did you mean \"linkage\"? it may add to: buses, devices, "
      "linkage");
}

TEST_CASE("config patch: a patch that would write invalid TOML is refused", "[config][patch]") {
  // toml++ writes a key holding a line break without quotes, which no parser reads back.
  CHECK_THAT(
      refused(R"({"set": {"gateway.bad\nkey": 1}})"),
      Catch::StartsWith("the patched site file would not be valid TOML: ") && Catch::Contains("(\"bad\")"));
}

TEST_CASE("config patch: a site file that is not TOML is refused with its line", "[config][patch]") {
  CHECK_THAT(refused(R"({"set": {"alarms.escalate_after_s": 1}})", "[gateway]\nid = \"gw-1\"\n[alarms\n"),
             Catch::StartsWith("the site file is not valid TOML: ") && Catch::Contains("at line 3, column"));
}

TEST_CASE("config patch: diff_summary lists elements, then changed tables", "[config][patch]") {
  const auto after = R"(
[gateway]
id = "gw-1"

[alarms]
escalate_after_s = 120

[uplink.mqtt]
host = "broker-2.example"

[[buses]]
name = "tcp-1"
driver = "modbus_tcp"
host = "10.0.0.5"

[[devices]]
name = "smoke-2"
bus = "tcp-1"
unit_id = 7

[[devices]]
name = "heat-3"
bus = "tcp-1"
unit_id = 3
)";
  CHECK(diff_summary(site, after) ==
        "devices ~smoke-2 +heat-3 -smoke-1; buses ~tcp-1; changed alarms, uplink.mqtt");
  CHECK(diff_summary(after, site) ==
        "devices +smoke-1 ~smoke-2 -heat-3; buses ~tcp-1; changed alarms, uplink.mqtt");
  CHECK(diff_summary(site, site + "[metrics]\nenabled = true\n") == "changed metrics");
  CHECK(diff_summary(site, "[gateway") == "the file was rewritten");
}

TEST_CASE("config patch: a patch that changes nothing shows no change", "[config][patch]") {
  const auto r = apply_patch(site, R"({"set": {"alarms.escalate_after_s": 300}})");
  REQUIRE(r.text);
  CHECK(*r.text != site);  // written again by toml++, in its own order and quoting
  CHECK(diff_summary(site, *r.text) == "no change");
  CHECK(diff_summary(site, site) == "no change");
}
