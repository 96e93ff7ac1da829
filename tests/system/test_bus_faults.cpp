// One cause, one alert: a real firegated polling six SD-1 detectors through one Modbus TCP server
// (firegate-sim), a real mosquitto as the platform. Every unit going silent at once, then the
// server going away, each raise one bus_offline naming the bus, its address, what failed and the
// six devices, and no device_offline; the bus answering again is one bus_online, after which the one
// detector that stays silent raises its own device_offline. A server back after a long outage is
// read within the line's longest retry step, and a fire behind it raised then.

#include "support.hpp"

#include <fmt/format.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <fstream>
#include <optional>
#include <set>
#include <thread>

using namespace firegate::test;
using json = nlohmann::json;

namespace {

json parsed(const mqtt_probe::message& m) {
  return json::parse(m.payload, nullptr, false);
}

/// The distinct events of `type` received so far (the platform de-duplicates on the id).
std::vector<json> events(mqtt_probe& platform, const std::string& type) {
  std::vector<json> out;
  std::set<std::string> seen;
  for (const auto& m : platform.messages()) {
    const auto j = parsed(m);
    if (j.is_object() && j.value("type", "") == type && seen.insert(j.value("id", "")).second)
      out.push_back(j);
  }
  return out;
}

/// Waits until `n` distinct events of `type` have arrived.
bool wait_events(mqtt_probe& platform, const std::string& type, std::size_t n,
                 std::chrono::milliseconds timeout = 30s) {
  return wait_until([&] { return events(platform, type).size() >= n; }, timeout);
}

}  // namespace

TEST_CASE(
    "bus faults: six silent units and a lost server are one bus_offline each - the bus back is one "
    "bus_online - a unit still silent then raises its own") {
  temp_dir dir;
  broker mosquitto(dir);
  mqtt_probe platform(mosquitto.port(), "firegate/#");
  simulator sim(dir, 6);
  const auto text = site_header(dir / "fg.db", mosquitto.port()) +
                    fmt::format(R"(heartbeat_s = 1
[[buses]]
name = "line-1"
driver = "modbus_tcp"
host = "127.0.0.1"
port = {}
timeout_ms = 100
poll_interval_ms = 300
alarm_interval_ms = 100
offline_retry_max_ms = 1000
)",
                                sim.port()) +
                    sd1_devices("line-1", 6);
  std::ofstream(dir / "fg.toml") << text;
  child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log");
  INFO(daemon.log_text());
  REQUIRE(platform.wait_for([](auto& m) { return m.topic.ends_with("/telemetry"); }, 10s));

  // Every unit goes silent in the same cycle (a cut RS-485 trunk behind a gateway): one alert.
  for (int u = 1; u <= 6; ++u) sim.send(fmt::format("{} answering 0", u));
  REQUIRE(wait_events(platform, "bus_offline", 1));
  auto down = events(platform, "bus_offline").front();
  CHECK(down["device"]["name"] == "line-1");
  CHECK(down["category"] == "fault");
  CHECK(down["severity"] == "major");
  CHECK(down["bus"]["address"] == fmt::format("127.0.0.1:{}", sim.port()));
  CHECK(down["bus"]["devices"].size() == 6);
  CHECK(down["bus"]["failed"].get<std::string>().find("no unit on it answers") != std::string::npos);
  CHECK(down["detail"].get<std::string>().find("smoke-6") != std::string::npos);
  // The devices are shown offline, and counted in the status message, without alerts of their own.
  REQUIRE(wait_until(
      [&] {
        const auto s = ctl(dir, {"--json", "status"}).doc();
        return s.is_object() && s["buses"].size() == 1 && s["buses"][0].value("offline", 0) == 6;
      },
      10s));
  REQUIRE(platform.wait_for(
      [](auto& m) {
        const auto j = parsed(m);
        return m.topic.ends_with("/status") && j.is_object() && j.value("reason", "") == "heartbeat" &&
               j.contains("devices") && j["devices"].value("offline", 0) == 6;
      },
      10s));

  // Five come back; the bus is online again, and the sixth, still silent, raises its own fault.
  for (int u = 1; u <= 5; ++u) sim.send(fmt::format("{} answering 1", u));
  REQUIRE(wait_events(platform, "bus_online", 1));
  CHECK(events(platform, "bus_online").front()["alarm_id"] == down["id"]);
  REQUIRE(wait_events(platform, "device_offline", 1));
  auto own = events(platform, "device_offline");
  REQUIRE(own.size() == 1);
  CHECK(own.front()["device"]["name"] == "smoke-6");
  // Counted once: offline with the bus, then on its own, it is one device offline (in a heartbeat
  // sent after its own alert; the times are ISO 8601 with the same offset, so they sort as text).
  const auto own_time = own.front()["time"].get<std::string>();
  REQUIRE(platform.wait_for(
      [&](auto& m) {
        const auto j = parsed(m);
        return m.topic.ends_with("/status") && j.is_object() && j.value("reason", "") == "heartbeat" &&
               j.value("time", "") > own_time && j.contains("devices") &&
               j["devices"].value("offline", -1) == 1 && j["devices"].value("online", -1) == 5;
      },
      10s));

  // The server goes away (the gateway unplugged): one more bus_offline, saying it cannot be opened.
  REQUIRE(sim.stop(SIGKILL) == 128 + SIGKILL);
  REQUIRE(wait_events(platform, "bus_offline", 2));
  auto lost = events(platform, "bus_offline").back();
  CHECK(lost["bus"]["failed"].get<std::string>().find("cannot be opened") != std::string::npos);
  CHECK(lost["bus"]["devices"].size() == 6);
  // No device raised an alert of its own through either outage: smoke-6's is the only one.
  CHECK(events(platform, "device_offline").size() == 1);
  CHECK(daemon.stop(SIGTERM) == 0);
}

TEST_CASE(
    "bus faults: a Modbus TCP server back after a long outage with a detector in fire - read within 2 s of "
    "its return and the fire raised - one bus_offline, one bus_online, no device alerts") {
  // A gateway with three detectors behind it loses power for 9 s: long enough for the tries to
  // connect to reach their longest step (2 s; it was 10 s, and the fire then waited up to that).
  temp_dir dir;
  broker mosquitto(dir);
  mqtt_probe platform(mosquitto.port(), "firegate/#");
  const auto port = free_port();  // the gateway comes back at its address
  const std::vector<std::string> gateway{"--devices", "3", "--port", std::to_string(port)};
  auto sim = std::make_unique<simulator>(dir, gateway);
  const auto text = sd1_site_config(dir / "fg.db", mosquitto.port(), port, 3);
  std::ofstream(dir / "fg.toml") << text;
  child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log");
  INFO(daemon.log_text());
  REQUIRE(platform.wait_for([](auto& m) { return m.topic.ends_with("/telemetry"); }, 10s));

  REQUIRE(sim->stop(SIGKILL) == 128 + SIGKILL);
  const auto lost_at = std::chrono::steady_clock::now();
  sim.reset();
  REQUIRE(wait_events(platform, "bus_offline", 1));
  CHECK(
      events(platform, "bus_offline").front()["bus"]["failed"].get<std::string>().find("cannot be opened") !=
      std::string::npos);
  // The outage lasts 9 s (a condition of the scenario, not a wait for something to happen).
  std::this_thread::sleep_until(lost_at + 9s);

  // Back, with a detector in fire behind it.
  sim = std::make_unique<simulator>(dir, gateway);
  const auto back_at = std::chrono::steady_clock::now();
  sim->send("2 smoke 2.5");
  sim->send("2 state 1");
  const auto fire = wait_event_where(
      platform, "fire_alarm", [](const json& e) { return e["device"]["name"] == "smoke-2"; }, 15s);
  const auto took = std::chrono::steady_clock::now() - back_at;
  REQUIRE(fire);
  INFO("the fire took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                        << " ms after the gateway was back");
  // Within the 2 s step and a poll, with room for a loaded machine (the 10 s step took up to 7 s).
  CHECK(took <= 4s);
  REQUIRE(wait_events(platform, "bus_online", 1));
  // One cause, one alert each way: no device raised or ended anything of its own.
  CHECK(events(platform, "bus_offline").size() == 1);
  CHECK(events(platform, "bus_online").size() == 1);
  CHECK(events(platform, "device_offline").empty());
  CHECK(events(platform, "device_online").empty());
  REQUIRE(wait_until(
      [&] {
        const auto s = ctl(dir, {"--json", "status"}).doc();
        return s.is_object() && s["buses"].size() == 1 && s["buses"][0].value("offline", -1) == 0;
      },
      10s));
  CHECK(daemon.stop(SIGTERM) == 0);
}

TEST_CASE(
    "bus faults: an MQTT ingest bus whose site broker goes away is one bus_offline for its sensors - back, "
    "one bus_online - a sensor still silent then raises its own") {
  temp_dir dir, site_dir;
  broker platform_broker(dir);
  mqtt_probe platform(platform_broker.port(), "firegate/#");
  auto site = std::make_unique<broker>(site_dir);
  const auto site_port = site->port();
  auto text = site_header(dir / "fg.db", platform_broker.port()) + fmt::format(R"([[buses]]
name = "wireless"
driver = "mqtt"
host = "127.0.0.1"
port = {}
)",
                                                                               site_port);
  for (int i = 1; i <= 3; ++i) {
    text += fmt::format(
        "[[devices]]\nname = \"smoke-room-{}\"\nbus = \"wireless\"\nprofile = \"ZB-SMOKE\"\n"
        "id = \"room{}\"\nlocation = \"room {}\"\noffline_after_s = 5\n",
        i, i, i);
  }
  std::ofstream(dir / "fg.toml") << text;
  child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log");
  INFO(daemon.log_text());
  const auto publish_all = [&](int n) {
    mqtt_probe bridge(site_port, "unused/#");
    for (int i = 1; i <= n; ++i)
      bridge.publish(fmt::format("zigbee2mqtt/room{}", i),
                     R"({"smoke": false, "battery": 90, "linkquality": 120})");
  };
  REQUIRE(
      wait_until([&] { return daemon.log_text().find("mqtt bus subscribed") != std::string::npos; }, 10s));
  publish_all(3);
  REQUIRE(wait_until(
      [&] {
        const auto s = ctl(dir, {"--json", "status"}).doc();
        return s.is_object() && s["buses"].size() == 1 && s["buses"][0].value("online", 0) == 3;
      },
      10s));

  // The site broker goes away: after the sensors' offline_after, one alert for the bus.
  site->stop();
  REQUIRE(wait_events(platform, "bus_offline", 1));
  const auto down = events(platform, "bus_offline").front();
  CHECK(down["device"]["name"] == "wireless");
  CHECK(down["bus"]["devices"].size() == 3);
  CHECK(down["bus"]["failed"].get<std::string>().find("site broker cannot be reached") != std::string::npos);
  CHECK(down["detail"].get<std::string>().find("the site broker's power") != std::string::npos);

  // Back: one bus_online; two sensors report within their 5 s, the third stays silent and raises its own
  // fault.
  site = std::make_unique<broker>(site_dir, site_port);
  REQUIRE(wait_events(platform, "bus_online", 1));
  CHECK(events(platform, "bus_online").front()["alarm_id"] == down["id"]);
  // The subscriptions are made again just after the connect: published until both are heard.
  REQUIRE(wait_until(
      [&] {
        publish_all(2);
        const auto s = ctl(dir, {"--json", "status"}).doc();
        return s.is_object() && s["buses"].size() == 1 && s["buses"][0].value("online", 0) == 2;
      },
      10s));
  REQUIRE(wait_events(platform, "device_offline", 1));
  const auto own = events(platform, "device_offline");
  REQUIRE(own.size() == 1);
  CHECK(own.front()["device"]["name"] == "smoke-room-3");
  CHECK(daemon.stop(SIGTERM) == 0);
}

TEST_CASE(
    "bus faults: a detector whose every answer is followed by stray bytes raises one comm_quality fault "
    "and no device_offline - kept through a restart - ended when its answers are clean") {
  temp_dir dir;
  broker mosquitto(dir);
  mqtt_probe platform(mosquitto.port(), "firegate/#");
  simulator sim(dir, 1);
  std::ofstream(dir / "fg.toml") << sd1_site_config(dir / "fg.db", mosquitto.port(), sim.port(), 1);
  std::optional<child> daemon;
  daemon.emplace(std::vector<std::string>{firegated_path(), "-c", (dir / "fg.toml").string()},
                 dir / "fg.log");
  REQUIRE(platform.wait_for([](auto& m) { return m.topic.ends_with("/telemetry"); }, 10s));

  // Every valid answer is followed by seven stray bytes, which the gateway reads as the start of
  // its next answer: about half the polls fail, never offline_after in a row.
  sim.send("1 junk 100\n");
  REQUIRE(wait_events(platform, "device_fault", 1));
  const auto fault = events(platform, "device_fault").front();
  INFO(fault.dump());
  CHECK(fault["device"]["name"] == "smoke-1");
  CHECK(fault["rule"] == "comm_quality");
  CHECK(fault["category"] == "fault");
  const auto detail = fault["detail"].get<std::string>();
  CHECK(detail.find("of the last 20 polls failed") != std::string::npos);
  CHECK(detail.find("malformed") != std::string::npos);
  CHECK(detail.find("127.0.0.1:") != std::string::npos);
  // Still counted online: it answers.
  const auto st = ctl(dir, {"--json", "status"}).doc();
  CHECK(st["devices"]["online"] == 1);

  // Stopped during the fault; the answers are clean when it starts again: the fault restored at start
  // is ended by the first full window of good polls, naming it.
  REQUIRE(daemon->stop(SIGTERM) == 0);
  daemon.reset();
  sim.send("1 junk 0\n");
  daemon.emplace(std::vector<std::string>{firegated_path(), "-c", (dir / "fg.toml").string()},
                 dir / "fg2.log");
  REQUIRE(wait_events(platform, "device_fault_recovery", 1));
  const auto recovery = events(platform, "device_fault_recovery").front();
  CHECK(recovery["alarm_id"] == fault["id"]);
  CHECK(recovery["rule"] == "comm_quality");
  CHECK(events(platform, "device_fault").size() == 1);
  // A line that answers badly is not a dead device.
  CHECK(events(platform, "device_offline").empty());
  CHECK(daemon->log_text().find("device answers mostly badly") == std::string::npos);
  CHECK(read_text(dir / "fg.log").find("device answers mostly badly bus=tcp-1 device=smoke-1") !=
        std::string::npos);
}
