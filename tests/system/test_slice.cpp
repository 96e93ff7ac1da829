// Proves the first end-to-end slice with every part real: firegate-sim (or libmodbus, an independent
// Modbus server) serves SD-1 detectors, the real firegated polls them, and a real mosquitto carries
// what the platform sees. A smoke alarm arrives with everything a control room needs, its recovery
// follows, an unanswering detector becomes a fault, and after a clean stop the outbox is empty.

#include "libmodbus_server.hpp"
#include "store/store.hpp"
#include "support.hpp"

#include <fmt/format.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <fstream>
#include <regex>
#include <thread>

using namespace firegate;
using namespace firegate::test;
using json = nlohmann::json;

namespace {

std::string gateway_config(const temp_dir& dir, std::uint16_t broker_port, std::uint16_t modbus_port) {
  return fmt::format(R"([profiles]
dir = "{}"
shipped = ""
[gateway]
id = "gw-test"
[site]
id = "site-test"
name = "Test Noodle Bar"
address = "1 Test Street, Hangzhou"
category = "restaurant"
latitude = 30.25
longitude = 120.17
[site.responsible]
name = "Wang Wei"
phone = "+86 138 0000 0001"
[site.backup]
name = "Li Na"
phone = "+86 139 0000 0002"
[storage]
path = "{}"
[uplink.mqtt]
host = "127.0.0.1"
port = {}
keepalive_s = 5
[[buses]]
name = "tcp-1"
driver = "modbus_tcp"
host = "127.0.0.1"
port = {}
timeout_ms = 200
poll_interval_ms = 100
offline_after = 2
[[devices]]
name = "smoke-kitchen"
bus = "tcp-1"
profile = "SD-1"
unit_id = 1
location = "1F kitchen"
description = "Photoelectric smoke detector"
[[devices]]
name = "smoke-hall"
bus = "tcp-1"
profile = "SD-1"
unit_id = 2
location = "1F hall"
)",
                     source_dir() + "/config/profiles", (dir / "fg.db").string(), broker_port, modbus_port);
}

/// The alarm the platform receives carries what a control room needs (docs/alarms.md).
void check_fire_alarm(const json& a) {
  CHECK(a["schema"] == "firegate.event/1");
  CHECK(std::regex_match(a["id"].get<std::string>(),
                         std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")));
  CHECK(a["seq"].get<int>() >= 1);
  CHECK(a["gateway"] == "gw-test");
  CHECK(a["category"] == "fire");
  CHECK(a["severity"] == "critical");
  CHECK(std::regex_match(a["time"].get<std::string>(),
                         std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d)")));
  CHECK(a["site"]["id"] == "site-test");
  CHECK(a["site"]["name"] == "Test Noodle Bar");
  CHECK(a["site"]["address"] == "1 Test Street, Hangzhou");
  CHECK(a["site"]["category"] == "restaurant");
  CHECK(a["site"]["latitude"] == 30.25);
  CHECK(a["site"]["longitude"] == 120.17);
  CHECK(a["contacts"]["responsible"]["name"] == "Wang Wei");
  CHECK(a["contacts"]["responsible"]["phone"] == "+86 138 0000 0001");
  CHECK(a["contacts"]["backup"]["phone"] == "+86 139 0000 0002");
  CHECK(a["device"]["name"] == "smoke-kitchen");
  CHECK(a["device"]["location"] == "1F kitchen");
  CHECK(a["device"]["description"] == "Photoelectric smoke detector");
  CHECK(a["point"] == "state");
  CHECK(a["value"] == 1.0);
  CHECK(a["confirmation"] == "unconfirmed");
  CHECK(a["summary"].get<std::string>().find("FIRE ALARM at Test Noodle Bar") == 0);
}

/// The control room acknowledges an alarm: a command on the gateway's cmd topic.
void acknowledge(mqtt_probe& platform, const std::string& command_id, const std::string& alarm_id,
                 const std::string& verdict) {
  platform.publish(
      "firegate/site-test/gw-test/cmd",
      command_text(command_id, "ack", {{"alarm_id", alarm_id}, {"verdict", verdict}, {"by", "operator 12"}}));
}

/// Stops firegated cleanly and checks that no event is left to send. The readings of the last
/// flush, made at the stop, wait in the outbox for the next start.
void stop_and_check_outbox(child& daemon, const temp_dir& dir, std::size_t min_events) {
  REQUIRE(daemon.stop(SIGTERM) == 0);
  store s((dir / "fg.db").string());
  const auto depth = s.outbox_depth_by_lane();
  CHECK(depth[static_cast<int>(lane::alarm)] == 0);
  CHECK(depth[static_cast<int>(lane::fault)] == 0);
  CHECK(depth[static_cast<int>(lane::telemetry)] <= 1);
  CHECK(s.event_count() >= min_events);
  CHECK(s.reading_count() > 0);
}

}  // namespace

TEST_CASE(
    "slice: simulator fire alarm - latched until the control room acknowledges it - recovery and offline "
    "fault reach the platform") {
  temp_dir dir;
  broker mosquitto(dir);
  mqtt_probe platform(mosquitto.port(), "firegate/#");
  simulator sim(dir, 2);
  const auto modbus_port = sim.port();
  std::ofstream(dir / "fg.toml") << gateway_config(dir, mosquitto.port(), modbus_port);
  child daemon({firegated_path(), "-c", (dir / "fg.toml").string(), "-l", "debug"}, dir / "fg.log");

  // Polling and telemetry work before anything is raised.
  auto telemetry =
      platform.wait_for([](auto& m) { return m.topic == "firegate/site-test/gw-test/telemetry"; }, 10s);
  INFO(daemon.log_text());
  REQUIRE(telemetry);
  {
    // firegate.telemetry/2: a flush's polls of every device, each with its points.
    auto t = json::parse(telemetry->payload);
    CHECK(t["schema"] == "firegate.telemetry/2");
    CHECK(t["gateway"] == "gw-test");
    REQUIRE(t["polls"].size() >= 1);
    const auto& poll = t["polls"][0];
    // Named by its first poll: gateway, device, epoch milliseconds.
    CHECK(t["id"].get<std::string>().starts_with("gw-test:" + poll["device"].get<std::string>() + ":"));
    CHECK(poll["points"]["supply_voltage"]["unit"] == "V");
    CHECK(poll["points"]["state"]["quality"] == "good");
    CHECK(poll["time"].get<std::string>().size() == 29);  // 2026-11-24T10:55:40.487+00:00
  }

  sim.send("1 state 1");
  auto alarm = platform.wait_for([](auto& m) { return is_event(m, "fire_alarm"); }, 10s);
  REQUIRE(alarm);
  CHECK(alarm->topic == "firegate/site-test/gw-test/alarm");
  const auto a = json::parse(alarm->payload);
  check_fire_alarm(a);

  // A fire alarm latches: the detector back to normal does not end it; the control room does.
  sim.send("1 state 0");
  CHECK_FALSE(platform.wait_for([](auto& m) { return is_event(m, "fire_recovery"); }, 1500ms));
  acknowledge(platform, "cmd-bad", "no-such-alarm", "real");
  auto refused = reply_to(platform, "cmd-bad");
  REQUIRE(refused);
  CHECK((*refused)["ok"] == false);
  CHECK((*refused)["error"] ==
        "no open alarm has id no-such-alarm: it has cleared already or is not this gateway's");
  acknowledge(platform, "cmd-1", a["id"], "false");
  auto reply = reply_to(platform, "cmd-1");
  REQUIRE(reply);
  CHECK((*reply)["ok"] == true);
  REQUIRE((*reply)["events"].size() == 2);
  CHECK((*reply)["events"][0]["type"] == "alarm_acknowledged");
  auto ack = platform.wait_for([](auto& m) { return is_event(m, "alarm_acknowledged"); }, 10s);
  REQUIRE(ack);
  const auto k = json::parse(ack->payload);
  CHECK(ack->topic == "firegate/site-test/gw-test/alarm");
  CHECK(k["alarm_id"] == a["id"]);
  CHECK(k["confirmation"] == "false");
  CHECK(k["actor"] == "operator 12");
  CHECK(k["state"] == "acknowledged");
  CHECK(k["first_time"] == a["time"]);
  CHECK(k["false_alarms_today"] == 1);
  auto recovery = platform.wait_for([](auto& m) { return is_event(m, "fire_recovery"); }, 10s);
  REQUIRE(recovery);
  const auto r = json::parse(recovery->payload);
  CHECK(r["alarm_id"] == a["id"]);
  CHECK(r["seq"].get<int>() > k["seq"].get<int>());
  CHECK(r["category"] == "recovery");
  CHECK(r["state"] == "cleared");
  CHECK(r["confirmation"] == "false");

  sim.send("2 answering 0");
  auto fault = platform.wait_for([](auto& m) { return is_event(m, "device_offline"); }, 10s);
  REQUIRE(fault);
  CHECK(fault->topic == "firegate/site-test/gw-test/event");
  const auto f = json::parse(fault->payload);
  CHECK(f["device"]["name"] == "smoke-hall");
  CHECK(f["category"] == "fault");
  CHECK(f["detail"].get<std::string>().find("no response before the timeout") != std::string::npos);

  stop_and_check_outbox(daemon, dir, 3);
}

TEST_CASE("slice: the same alarm from libmodbus - an independent Modbus server") {
  temp_dir dir;
  broker mosquitto(dir);
  mqtt_probe platform(mosquitto.port(), "firegate/#");

  libmodbus_server server;
  server.set_input_register(0, 0);
  std::ofstream(dir / "fg.toml") << gateway_config(dir, mosquitto.port(), server.port());
  {
    child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log");
    auto telemetry = platform.wait_for([](auto& m) { return m.topic.ends_with("/telemetry"); }, 10s);
    INFO(daemon.log_text());
    REQUIRE(telemetry);
    server.set_input_register(0, 1);
    // libmodbus answers every unit id alike, so both detectors see the fire; check the kitchen's.
    auto alarm = platform.wait_for(
        [](auto& m) {
          return is_event(m, "fire_alarm") && json::parse(m.payload)["device"]["name"] == "smoke-kitchen";
        },
        10s);
    REQUIRE(alarm);
    check_fire_alarm(json::parse(alarm->payload));
    server.set_input_register(0, 0);
    acknowledge(platform, "cmd-1", json::parse(alarm->payload)["id"], "real");
    REQUIRE(platform.wait_for([](auto& m) { return is_event(m, "fire_recovery"); }, 10s));
    stop_and_check_outbox(daemon, dir, 2);
  }
}

TEST_CASE("a dead detector first on the bus does not take its neighbours offline") {
  temp_dir dir;
  broker mosquitto(dir);
  mqtt_probe platform(mosquitto.port(), "firegate/#");
  simulator sim(dir, 2);
  const auto modbus_port = sim.port();
  std::ofstream(dir / "fg.toml") << gateway_config(dir, mosquitto.port(), modbus_port);
  sim.send("1 answering 0");  // smoke-kitchen, polled first, is dead from the start
  child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log");
  INFO(daemon.log_text());
  auto offline = platform.wait_for([](auto& m) { return is_event(m, "device_offline"); }, 10s);
  REQUIRE(offline);
  CHECK(json::parse(offline->payload)["device"]["name"] == "smoke-kitchen");
  // Its neighbour keeps being read and raises its own alarm on time.
  sim.send("2 state 1");
  auto alarm = platform.wait_for([](auto& m) { return is_event(m, "fire_alarm"); }, 10s);
  REQUIRE(alarm);
  CHECK(json::parse(alarm->payload)["device"]["name"] == "smoke-hall");
  for (const auto& m : platform.messages()) {
    if (is_event(m, "device_offline")) CHECK(json::parse(m.payload)["device"]["name"] == "smoke-kitchen");
  }
  REQUIRE(daemon.stop(SIGTERM) == 0);
}

TEST_CASE("alarms raised while the broker is down are stored and delivered when it comes back") {
  temp_dir dir;
  const auto broker_port = free_port();  // nothing listens yet
  simulator sim(dir, 2);
  const auto modbus_port = sim.port();
  std::ofstream(dir / "fg.toml") << gateway_config(dir, broker_port, modbus_port);
  child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log");
  sim.send("1 state 1");
  INFO(daemon.log_text());
  REQUIRE(wait_until([&] { return daemon.log_text().find("type=fire_alarm") != std::string::npos; }, 10s));

  // The broker appears on the configured port; the stored alarm goes out first.
  broker mosquitto(dir, broker_port);
  mqtt_probe platform(broker_port, "firegate/#");
  auto alarm = platform.wait_for([](auto& m) { return is_event(m, "fire_alarm"); }, 20s);
  REQUIRE(alarm);
  check_fire_alarm(json::parse(alarm->payload));
  stop_and_check_outbox(daemon, dir, 1);
}

TEST_CASE(
    "slice: an EFD-4T's residual current over its setting is a fire alarm with the setting - a site override "
    "counts") {
  temp_dir dir;
  broker mosquitto(dir);
  mqtt_probe platform(mosquitto.port(), "firegate/#");
  simulator sim(dir, std::vector<std::string>{"--devices", "EFD-4T:1-2"});
  auto text = sd1_site_config(dir / "fg.db", mosquitto.port(), sim.port(), 2);
  for (auto at = text.find("\"SD-1\""); at != std::string::npos; at = text.find("\"SD-1\"")) {
    text.replace(at, 6, "\"EFD-4T\"");
  }
  // smoke-2 (an EFD-4T here) alarms at 500 mA instead of the profile's 300.
  text += "[devices.rules.leakage]\nset = 500\n";
  std::ofstream(dir / "fg.toml") << text;
  child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log");
  sim.send("1 residual_current 350");
  sim.send("2 residual_current 350");
  auto alarm = platform.wait_for([](auto& m) { return is_event(m, "fire_alarm"); }, 10s);
  INFO(daemon.log_text());
  REQUIRE(alarm);
  const auto a = json::parse(alarm->payload);
  CHECK(a["device"]["name"] == "smoke-1");
  CHECK(a["rule"] == "leakage");
  CHECK(a["point"] == "residual_current");
  // The simulator's values wander (±4 mA for leakage) about once a second: the poll that decided
  // may have read 350 or a wandered value near it, and the alarm carries what it read.
  const auto value = a["value"].get<double>();
  CHECK(value >= 346.0);
  CHECK(value <= 354.0);
  CHECK(a["unit"] == "mA");
  CHECK(a["threshold"] == 300.0);
  CHECK(a["device_code"] == 201);
  CHECK(a["detail"] == fmt::format("residual current over its alarm setting: {} mA (setting 300 mA)",
                                   static_cast<int>(value)));
  // smoke-2 stays quiet at 350 mA, and alarms past its own 500.
  sim.send("2 residual_current 520");
  auto second = platform.wait_for(
      [](auto& m) { return is_event(m, "fire_alarm") && m.payload.find("\"smoke-2\"") != std::string::npos; },
      10s);
  REQUIRE(second);
  CHECK(json::parse(second->payload)["threshold"] == 500.0);
  std::size_t fires = 0;
  for (const auto& m : platform.messages()) fires += is_event(m, "fire_alarm") ? 1 : 0;
  CHECK(fires == 2);
  CHECK(daemon.stop(SIGTERM) == 0);
}

TEST_CASE(
    "slice: a fire still burning across a restart is not raised again - its recovery names the first alarm") {
  temp_dir dir;
  broker mosquitto(dir);
  mqtt_probe platform(mosquitto.port(), "firegate/#");
  simulator sim(dir, 1);
  std::ofstream(dir / "fg.toml") << sd1_site_config(dir / "fg.db", mosquitto.port(), sim.port(), 1);
  std::string first_id;
  {
    child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg-1.log");
    sim.send("1 state 1");
    auto alarm = platform.wait_for([](auto& m) { return is_event(m, "fire_alarm"); }, 10s);
    INFO(daemon.log_text());
    REQUIRE(alarm);
    first_id = json::parse(alarm->payload)["id"];
    REQUIRE(daemon.stop(SIGTERM) == 0);
  }
  child again({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg-2.log");
  REQUIRE(
      wait_until([&] { return again.log_text().find("alarms restored open=1") != std::string::npos; }, 10s));
  // Polled every 50 ms and still in fire: were it raised again, it would be by now.
  REQUIRE(wait_until([&] { return again.log_text().find("modbus connected") != std::string::npos; }, 10s));
  std::this_thread::sleep_for(1s);
  std::size_t fires = 0;
  for (const auto& m : platform.messages()) fires += is_event(m, "fire_alarm") ? 1 : 0;
  INFO(again.log_text());
  CHECK(fires == 1);
  sim.send("1 state 0");
  acknowledge(platform, "cmd-1", first_id, "real");  // restored as open: the first id still names it
  auto recovery = platform.wait_for([](auto& m) { return is_event(m, "fire_recovery"); }, 10s);
  REQUIRE(recovery);
  CHECK(json::parse(recovery->payload)["alarm_id"] == first_id);
  CHECK(again.stop(SIGTERM) == 0);
}
