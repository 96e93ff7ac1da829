// MQTT ingest mappings (drivers/mqtt/mapping.cpp): topic patterns, the shipped profiles, and every
// way a message can be wrong. Pure: no broker here (the driver's tests have one).

#include "driver_harness.hpp"
#include "mqtt/mapping.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace firegate;
using namespace firegate::mqtt_ingest;

namespace {

double ingest_value(const decoded_message& m, const std::string& point) {
  for (const auto& r : m.readings) {
    if (r.point == point) return r.value;
  }
  FAIL("no point " << point);
  return 0;
}

const clock::time_point received{std::chrono::milliseconds(1795505451505)};

}  // namespace

TEST_CASE("mqtt topic patterns: wildcards - a named level captures the device id") {
  std::string error;
  const auto p = parse_topic_pattern("zigbee2mqtt/+id", error);
  REQUIRE(p);
  CHECK(p->filter() == "zigbee2mqtt/+");
  CHECK(match_topic(*p, "zigbee2mqtt/kitchen") == std::optional<std::string>("kitchen"));
  CHECK_FALSE(match_topic(*p, "zigbee2mqtt/kitchen/set"));
  CHECK_FALSE(match_topic(*p, "zigbee2mqtt"));
  CHECK_FALSE(match_topic(*p, "other/kitchen"));
  const auto any = parse_topic_pattern("site/+/+dev/#", error);
  REQUIRE(any);
  CHECK(any->filter() == "site/+/+/#");
  CHECK(match_topic(*any, "site/a/b") == std::optional<std::string>("b"));
  CHECK(match_topic(*any, "site/a/b/c/d") == std::optional<std::string>("b"));
  CHECK(match_topic(*parse_topic_pattern("nbiot/+/push", error), "nbiot/x/push") ==
        std::optional<std::string>(""));
  for (const char* bad : {"", "a/#/b", "a/b+", "a/+x/+y", "a/#x"}) {
    INFO(bad);
    CHECK_FALSE(parse_topic_pattern(bad, error));
    CHECK_FALSE(error.empty());
  }
}

TEST_CASE("mqtt ingest: the shipped profiles map their devices' messages") {
  const auto library = test::shipped_ingest_profiles();
  REQUIRE(library.size() == 3);
  std::string error;

  const auto zb =
      decode(library.at("ZB-SMOKE"), "zigbee2mqtt/kitchen",
             R"({"smoke": true, "battery": 87, "battery_low": false, "tamper": false, "linkquality": 120})",
             received, error);
  REQUIRE(zb);
  CHECK(zb->device_id == "kitchen");
  CHECK(zb->readings.size() == 5);
  CHECK(ingest_value(*zb, "smoke") == 1.0);
  CHECK(ingest_value(*zb, "battery") == 87.0);
  CHECK(ingest_value(*zb, "battery_low") == 0.0);
  CHECK(ingest_value(*zb, "link_quality") == 120.0);
  CHECK(zb->readings[0].time == received);
  CHECK(zb->problems.empty());

  // NB-IoT: the id from the payload, the counter for order, a status sent as text.
  const auto nb = decode(
      library.at("NB-SMOKE"), "nbiot/platform-1/push",
      R"({"IMEI": "868120301234567", "Alarm_Status": "1", "Battery_Level": 76, "RSRP": -92, "Seq": 1042})",
      received, error);
  REQUIRE(nb);
  CHECK(nb->device_id == "868120301234567");
  CHECK(nb->sequence == 1042.0);
  CHECK(ingest_value(*nb, "alarm_status") == 1.0);
  CHECK(ingest_value(*nb, "rsrp") == -92.0);

  // Electrical fire: nested fields and a numeric alarm code from the table.
  const auto ef = decode(library.at("EFD-W"), "efd/EF-0001/up",
                         R"({"dev": "EF-0001", "data": {"code": 201, "leakage_ma": 350, "temp_c": 41.5}})",
                         received, error);
  REQUIRE(ef);
  CHECK(ef->device_id == "EF-0001");
  CHECK(ingest_value(*ef, "alarm_code") == 201.0);
  CHECK(ingest_value(*ef, "residual_current") == 350.0);
  CHECK(ingest_value(*ef, "temperature") == 41.5);
  // Each fire code has its rule, carrying the maker's code.
  const auto& efd_rules = library.at("EFD-W").rules;
  CHECK(std::count_if(efd_rules.begin(), efd_rules.end(),
                      [](const auto& r) { return r.category == firegate::alarm_category::fire; }) == 3);
}

TEST_CASE("mqtt ingest: a wrong message is refused or its bad fields marked - never a crash") {
  const auto library = test::shipped_ingest_profiles();
  const auto& zb = library.at("ZB-SMOKE");
  const auto& nb = library.at("NB-SMOKE");
  std::string error;
  CHECK_FALSE(decode(zb, "zigbee2mqtt/kitchen", "{not json", received, error));
  CHECK(error == "the payload is not a JSON object");
  CHECK_FALSE(decode(zb, "zigbee2mqtt/kitchen", "[1,2,3]", received, error));
  CHECK_FALSE(decode(zb, "zigbee2mqtt/kitchen", std::string(max_payload_bytes + 1, ' '), received, error));
  CHECK(error.find("at most 16384") != std::string::npos);
  CHECK_FALSE(decode(zb, "zigbee2mqtt/kitchen/x", "{}", received, error));
  CHECK_FALSE(decode(nb, "nbiot/p/push", R"({"Alarm_Status": 1})", received, error));
  CHECK(error.find("IMEI") != std::string::npos);
  CHECK_FALSE(decode(nb, "nbiot/p/push", R"({"IMEI": "has space"})", received, error));
  CHECK_FALSE(decode(nb, "nbiot/p/push", R"({"IMEI": ""})", received, error));

  // Wrong types: the point is there, marked bad, and the problem named.
  const auto typed = decode(zb, "zigbee2mqtt/kitchen",
                            R"({"smoke": "maybe", "battery": {"v": 1}, "tamper": 2})", received, error);
  REQUIRE(typed);
  REQUIRE(typed->readings.size() == 3);
  for (const auto& r : typed->readings) CHECK(r.q == quality::bad);
  CHECK(typed->problems.size() == 3);
  // A code outside the table is taken, and said.
  const auto odd = decode(nb, "nbiot/p/push", R"({"IMEI": "1", "Alarm_Status": 9})", received, error);
  REQUIRE(odd);
  CHECK(odd->readings[0].q == quality::good);
  REQUIRE(odd->problems.size() == 1);
  CHECK(odd->problems[0].find("code 9") != std::string::npos);
  // A number no code table could hold (1e300, as a float can carry) is outside the table, not a crash.
  const auto huge = decode(nb, "nbiot/p/push", R"({"IMEI": "1", "Alarm_Status": 1e300})", received, error);
  REQUIRE(huge);
  CHECK(huge->problems.size() == 1);
  CHECK_FALSE(label_key(1e300));
  CHECK_FALSE(label_key(2.5));
  CHECK(label_key(-3.0) == std::optional<std::int64_t>(-3));
  // Absent and null fields are not readings.
  const auto partial =
      decode(zb, "zigbee2mqtt/kitchen", R"({"battery": 50, "smoke": null})", received, error);
  REQUIRE(partial);
  CHECK(partial->readings.size() == 1);
}

TEST_CASE("mqtt ingest profiles: errors name the key and the fix") {
  const auto parse = [](const std::string& text) {
    config::config_errors errors;
    const auto root = toml::parse(text);
    config::config_node node(root, "", errors);
    const auto p = parse_ingest_profile(node);
    return std::pair{p.has_value(), errors.format("p.toml")};
  };
  CHECK(parse("name = \"X\"\ntopic = \"a/+id\"\n[[points]]\nname = \"v\"\nfield = \"v\"\n").first);
  auto [ok1, e1] = parse("name = \"X\"\ntopic = \"a/+\"\n[[points]]\nname = \"v\"\nfield = \"v\"\n");
  CHECK_FALSE(ok1);
  CHECK(e1.find("id_field") != std::string::npos);
  auto [ok2, e2] =
      parse("name = \"X\"\ntopic = \"a/+id\"\n[[points]]\nname = \"v\"\nfield = \"v\"\ntype = \"text\"\n");
  CHECK_FALSE(ok2);
  CHECK(e2.find("type") != std::string::npos);
  auto [ok3, e3] = parse("name = \"X\"\ntopic = \"a/+id\"\n");
  CHECK_FALSE(ok3);
  CHECK(e3.find("no [[points]]") != std::string::npos);
  auto [ok4, e4] = parse(
      "name = \"X\"\ntopic = \"a/+id\"\n[[points]]\nname = \"v\"\nfield = \"v\"\n[[points]]\nname = "
      "\"v\"\nfield = \"w\"\n");
  CHECK_FALSE(ok4);
  CHECK(e4.find("used by another point") != std::string::npos);
  auto [ok5, e5] =
      parse("name = \"X\"\ntopic = \"a/+id\"\n[[points]]\nname = \"ingest_flood\"\nfield = \"v\"\n");
  CHECK_FALSE(ok5);
  CHECK(e5.find("a point the driver adds to every device") != std::string::npos);
  auto seq = parse(
      "name = \"X\"\ntopic = \"a/+id\"\nsequence_field = \"n\"\nsequence_window = -1\n[[points]]\nname = "
      "\"v\"\nfield = \"v\"\n");
  CHECK_FALSE(seq.first);
  CHECK(seq.second.find("sequence_window") != std::string::npos);
}

TEST_CASE(
    "mqtt ingest: a message's own time - seconds, milliseconds, ISO 8601 with its zone - within bounds") {
  // Expected instants from GNU date (date -u -d ... +%s), not from firegate's code.
  using std::chrono::milliseconds;
  const auto at = [](const std::string& text) { return parse_message_time(nlohmann::json::parse(text)); };
  CHECK(at("1795505421") == clock::time_point(milliseconds(1795505421000)));
  CHECK(at("1795505421250") == clock::time_point(milliseconds(1795505421250)));
  CHECK(at("\"1795505421250\"") == clock::time_point(milliseconds(1795505421250)));
  CHECK(at("\"2026-11-24T07:30:21Z\"") == clock::time_point(milliseconds(1795505421000)));
  CHECK(at("\"2026-11-25T12:30:21.250+08:00\"") == clock::time_point(milliseconds(1795581021250)));
  CHECK(at("\"2026-11-25 12:30:21.25+0800\"") == clock::time_point(milliseconds(1795581021250)));
  CHECK(at("\"2024-02-29T23:59:59Z\"") == clock::time_point(milliseconds(1709251199000)));
  // No zone, not a date, nonsense: no time.
  CHECK_FALSE(at("\"2026-11-24T07:30:21\""));
  CHECK_FALSE(at("\"2026-13-24T07:30:21Z\""));
  CHECK_FALSE(at("\"yesterday\""));
  CHECK_FALSE(at("-5"));
  CHECK_FALSE(at("true"));
  CHECK_FALSE(at("{}"));

  // In a message: the readings take it when it is usable, the arrival time otherwise.
  ingest_profile p;
  std::string why;
  p.name = "T";
  p.topic = *parse_topic_pattern("t/+id", why);
  p.time_path = {"ts"};
  p.points.push_back({"smoke", {"smoke"}, field_type::boolean, 1, 0, "", {}, {}});
  std::string error;
  // received is 2026-11-24T07:30:51.505Z; 30 s earlier:
  auto m = decode(p, "t/a", R"({"smoke": true, "ts": 1795505421505})", received, error);
  REQUIRE(m);
  CHECK(m->sent == clock::time_point(milliseconds(1795505421505)));
  CHECK(m->readings.at(0).time == clock::time_point(milliseconds(1795505421505)));
  CHECK(m->problems.empty());
  // Two minutes ahead of the gateway: its clock is wrong.
  m = decode(p, "t/a", R"({"smoke": true, "ts": 1795505571505})", received, error);
  REQUIRE(m);
  CHECK_FALSE(m->sent);
  CHECK(m->readings.at(0).time == received);
  REQUIRE(m->problems.size() == 1);
  CHECK(m->problems[0].find("ahead of the gateway's clock") != std::string::npos);
  // A sensor clock reset to 1970 (eight days and more behind): arrival time, and said.
  m = decode(p, "t/a", R"({"smoke": true, "ts": 86400})", received, error);
  REQUIRE(m);
  CHECK(m->readings.at(0).time == received);
  CHECK(m->problems.at(0).find("seven days behind") != std::string::npos);
  // Unreadable: arrival time, and said.
  m = decode(p, "t/a", R"({"smoke": true, "ts": "soon"})", received, error);
  REQUIRE(m);
  CHECK(m->readings.at(0).time == received);
  CHECK(m->problems.at(0).find("is not a time") != std::string::npos);
}
