// Telemetry messages are written without a JSON tree (they run for every poll of the fleet); an
// independent parser reads them back here, with the strings a site file may hold.

#include "uplink/mqtt/payloads.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace firegate;
using nlohmann::json;

namespace {

reading at(std::string device, std::string point, double value, std::string unit, clock::time_point t,
           quality q = quality::good) {
  return {std::move(device), std::move(point), value, std::move(unit), q, t};
}

}  // namespace

TEST_CASE("telemetry messages parse back - strings escaped - polls grouped and chunked") {
  config::gateway_file cfg;
  cfg.gateway.id = "gw-1";
  const auto t0 = clock::time_point(std::chrono::milliseconds(1795505451505));
  const auto t1 = t0 + std::chrono::milliseconds(250);
  const std::vector<reading> readings{
      at("smoke \"kitchen\"", "state", 1, "", t0),
      at("smoke \"kitchen\"", "temperature", 21.5, "°C", t0),
      at("efd\\main", "cable_temperature_1", std::nan(""), "°C", t0, quality::bad),
      at("efd\\main", "residual_current", 35, "mA\t", t0),
      at("smoke \"kitchen\"", "state", 0, "", t1),
  };
  auto messages = telemetry_messages(readings, cfg, 2);
  REQUIRE(messages.size() == 2);  // three polls, two a message
  auto first = json::parse(messages[0]);
  CHECK(first["schema"] == "firegate.telemetry/2");
  CHECK(first["id"] == "gw-1:smoke \"kitchen\":1795505451505");
  CHECK(first["gateway"] == "gw-1");
  REQUIRE(first["polls"].size() == 2);
  const auto& kitchen = first["polls"][0];
  CHECK(kitchen["device"] == "smoke \"kitchen\"");
  CHECK(kitchen["time"] == "2026-11-24T07:30:51.505+00:00");
  CHECK(kitchen["points"]["state"]["value"] == 1);
  CHECK(kitchen["points"]["temperature"]["value"] == 21.5);
  CHECK(kitchen["points"]["temperature"]["unit"] == "°C");
  CHECK(kitchen["points"]["temperature"]["quality"] == "good");
  const auto& efd = first["polls"][1];
  CHECK(efd["device"] == "efd\\main");
  CHECK(efd["points"]["cable_temperature_1"]["value"].is_null());
  CHECK(efd["points"]["cable_temperature_1"]["quality"] == "bad");
  CHECK(efd["points"]["residual_current"]["unit"] == "mA\t");
  auto second = json::parse(messages[1]);
  REQUIRE(second["polls"].size() == 1);
  CHECK(second["id"] == "gw-1:smoke \"kitchen\":1795505451755");
  CHECK(second["polls"][0]["points"]["state"]["value"] == 0);
  CHECK(telemetry_messages({}, cfg).empty());
}

TEST_CASE(
    "event messages: the alarm's state - its confirmation - test alarms are not for dispatch - shields say "
    "until when") {
  config::gateway_file cfg;
  cfg.gateway.id = "gw-1";
  cfg.site.name = "Test Hostel";
  cfg.mqtt.topic_prefix = "firegate";
  event e;
  e.id = "e-2";
  e.kind = event_kind::alarm_acknowledged;
  e.device = "smoke-1";
  e.time = clock::time_point(std::chrono::seconds(1'790'000'100));
  e.first_time = clock::time_point(std::chrono::seconds(1'790'000'000));
  e.alarm_id = "e-1";
  e.verdict = "false";
  e.actor = "operator 12";
  e.false_alarms_today = 6;
  auto ack = nlohmann::json::parse(event_json(e, cfg, nullptr));
  CHECK(ack["state"] == "acknowledged");
  CHECK(ack["confirmation"] == "false");
  CHECK(ack["actor"] == "operator 12");
  CHECK(ack["first_time"] == iso8601(*e.first_time));
  CHECK(ack["last_change"] == iso8601(e.time));
  CHECK(ack["false_alarms_today"] == 6);
  CHECK(ack["category"] == "acknowledgement");

  e.kind = event_kind::fire_alarm;
  e.verdict.clear();
  e.test = true;
  auto test = nlohmann::json::parse(event_json(e, cfg, nullptr));
  CHECK(test["category"] == "test");
  CHECK(test["severity"] == "info");
  CHECK(test["summary"].get<std::string>().starts_with("TEST: FIRE ALARM at Test Hostel"));
  CHECK(test["confirmation"] == "unconfirmed");
  CHECK(test["state"] == "active");

  e.kind = event_kind::alarm_escalation;
  e.test = false;
  e.repeat = 2;
  auto esc = nlohmann::json::parse(event_json(e, cfg, nullptr));
  CHECK(esc["repeat"] == 2);
  CHECK(esc["severity"] == "critical");
  CHECK(esc["summary"].get<std::string>().starts_with("FIRE ALARM NOT ACKNOWLEDGED (repeat 2)"));

  e.kind = event_kind::device_shielded;
  e.until = e.time + std::chrono::hours(4);
  auto shield = nlohmann::json::parse(event_json(e, cfg, nullptr));
  CHECK(shield["until"] == iso8601(*e.until));
  CHECK(shield["category"] == "shielded");
  CHECK_FALSE(shield.contains("state"));  // not an alarm: no state, no confirmation
  CHECK_FALSE(shield.contains("confirmation"));
}

TEST_CASE("status messages: online with the gateway's health - offline names the reason") {
  config::gateway_file cfg;
  cfg.gateway.id = "gw-1";
  cfg.site.id = "site-1";
  cfg.site.name = "Test Hostel";
  gateway_health h;
  h.id = "st-1";
  h.started = clock::time_point(std::chrono::seconds(1'790'000'000));
  h.time = h.started + std::chrono::seconds(3725);
  h.outbox = {1, 2, 300};
  h.devices = 5;
  h.devices_offline = 2;
  h.alarms.fire = 1;
  h.alarms.unacknowledged = 1;
  h.alarms.shielded = 1;
  h.storage = "failing";
  h.storage_faults = 3;
  h.uplink_connects = 4;
  auto j = nlohmann::json::parse(status_json(cfg, h, "heartbeat"));
  CHECK(j["schema"] == "firegate.status/1");
  CHECK(j["id"] == "st-1");
  CHECK(j["state"] == "online");
  CHECK(j["reason"] == "heartbeat");
  CHECK(j["site"] == "site-1");
  CHECK(j["site_name"] == "Test Hostel");
  CHECK(j["uptime_s"] == 3725);
  CHECK(j["started"] == iso8601(h.started));
  CHECK(j["outbox"] == nlohmann::json{{"alarm", 1}, {"event", 2}, {"telemetry", 300}});
  CHECK(j["devices"] == nlohmann::json{{"total", 5}, {"online", 3}, {"offline", 2}});
  CHECK(j["alarms"]["fire"] == 1);
  CHECK(j["alarms"]["unacknowledged"] == 1);
  CHECK(j["shielded_devices"] == 1);
  CHECK(j["storage"] == nlohmann::json{{"state", "failing"}, {"faults", 3}});
  CHECK(j["uplink_connects"] == 4);
  auto off = nlohmann::json::parse(offline_json(cfg, "st-2", h.time, h.started, "connection lost"));
  CHECK(off["state"] == "offline");
  CHECK(off["reason"] == "connection lost");
  CHECK(off["id"] == "st-2");
  CHECK_FALSE(off.contains("outbox"));
}

TEST_CASE("event messages: the gateway's own alarm (its self-test) names the gateway as where") {
  config::gateway_file cfg;
  cfg.gateway.id = "gw-1";
  cfg.site.name = "Test Hostel";
  event e;
  e.id = "st-1";
  e.kind = event_kind::fire_alarm;
  e.rule = "self_test";
  e.test = true;
  e.time = clock::time_point(std::chrono::seconds(1'790'000'000));
  e.detail = "end-to-end self-test requested by tech 7";
  auto j = nlohmann::json::parse(event_json(e, cfg, nullptr));
  CHECK(j["summary"] ==
        "TEST: FIRE ALARM at Test Hostel: the gateway, end-to-end self-test requested by tech 7");
  CHECK(j["category"] == "test");
}

TEST_CASE("event messages: an alarm's evidence and value_label - repeated in its summary") {
  config::gateway_file cfg;
  cfg.gateway.id = "gw-1";
  cfg.site.name = "Test Hostel";
  event e;
  e.id = "gas-1";
  e.kind = event_kind::fire_alarm;
  e.device = "gas-kitchen";
  e.point = "state";
  e.value = 2;
  e.value_label = "high_alarm";
  e.rule = "high_alarm";
  e.time = clock::time_point(std::chrono::seconds(1'790'000'000));
  e.detail = "combustible gas over the high alarm setting";
  e.evidence = {{"concentration", 60, "%LEL", {}}, {"high_alarm_setting", 50, "%LEL", {}}};
  auto j = nlohmann::json::parse(event_json(e, cfg, nullptr));
  CHECK(j["value_label"] == "high_alarm");
  REQUIRE(j["evidence"].size() == 2);
  CHECK(j["evidence"][0] == nlohmann::json{{"name", "concentration"}, {"value", 60.0}, {"unit", "%LEL"}});
  CHECK_FALSE(j["evidence"][0].contains("label"));
  CHECK(
      j["summary"] ==
      "FIRE ALARM at Test Hostel: gas-kitchen, combustible gas over the high alarm setting (concentration 60 "
      "%LEL, high_alarm_setting 50 %LEL)");
  e.evidence = {{"state", 1, "", "fire"}};
  j = nlohmann::json::parse(event_json(e, cfg, nullptr));
  CHECK(j["evidence"][0]["label"] == "fire");
  // No point, no value_label; no evidence, no key.
  e.point.clear();
  e.evidence.clear();
  j = nlohmann::json::parse(event_json(e, cfg, nullptr));
  CHECK_FALSE(j.contains("value_label"));
  CHECK_FALSE(j.contains("evidence"));
}
