// Linkage and test mode end to end: a real firegated, firegate-sim serving an SD-1 detector and an
// RL-2 relay module, a real mosquitto. A test alarm drives nothing; the real alarm sounds the siren
// (written and read back from the relay), its end silences it, and a relay that does not answer is
// reported as a failed linkage for someone to act by hand. Commands go over the cmd topic.

#include "support.hpp"

#include <fmt/format.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <fstream>
#include <set>

using namespace firegate;
using namespace firegate::test;
using json = nlohmann::json;

namespace {

std::optional<json> event_of(mqtt_probe& platform, const std::string& type, std::size_t nth = 0,
                             std::chrono::milliseconds timeout = 10s) {
  // The nth distinct event: delivery is at least once, and the platform de-duplicates on the id
  // (docs/uplink.md), so a message the broker hands over twice is one event.
  auto m = platform.wait_for(
      [&, seen = std::set<std::string>{}](auto& msg) mutable {
        auto j = json::parse(msg.payload, nullptr, false);
        if (!j.is_object() || j.value("type", "") != type) return false;
        return seen.insert(j.value("id", "")).second && seen.size() == nth + 1;
      },
      timeout);
  return m ? std::optional(json::parse(m->payload)) : std::nullopt;
}

void command(mqtt_probe& platform, const std::string& id, const std::string& name, json args) {
  platform.publish("firegate/site-test/gw-test/cmd",
                   json{{"id", id}, {"command", name}, {"args", args}}.dump());
}

bool replied_ok(mqtt_probe& platform, const std::string& id) {
  auto m = platform.wait_for(
      [&](auto& msg) { return msg.topic.ends_with("/cmd/reply") && json::parse(msg.payload)["id"] == id; },
      10s);
  return m && json::parse(m->payload)["ok"] == true;
}

/// Distinct events of `type` received (by id, as the platform de-duplicates).
std::size_t count(mqtt_probe& platform, const std::string& type) {
  std::set<std::string> ids;
  for (const auto& m : platform.messages()) {
    auto j = json::parse(m.payload, nullptr, false);
    if (j.is_object() && j.value("type", "") == type) ids.insert(j.value("id", ""));
  }
  return ids.size();
}

}  // namespace

TEST_CASE(
    "linkage: a test alarm drives nothing - the real alarm sounds the siren and read back - its end "
    "silences it - a dead relay is a failed linkage - a shield ends and suppresses alarms") {
  temp_dir dir;
  broker mosquitto(dir);
  mqtt_probe platform(mosquitto.port(), "firegate/#");
  simulator sim(dir, std::vector<std::string>{"--devices", "SD-1:1", "RL-2:2"});
  auto text = sd1_site_config(dir / "fg.db", mosquitto.port(), sim.port(), 1);
  text += R"([[devices]]
name = "relay-1"
bus = "tcp-1"
profile = "RL-2"
unit_id = 2
location = "1F corridor"
[[linkage]]
name = "sounder"
on = "fire"
devices = ["smoke-1"]
device = "relay-1"
write = "siren"
value = 1
reset_value = 0
)";
  std::ofstream(dir / "fg.toml") << text;
  child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log");
  INFO(daemon.log_text());
  REQUIRE(platform.wait_for([](auto& m) { return m.topic.ends_with("/telemetry"); }, 10s));

  // Under maintenance: the alarm is marked test, and the siren stays quiet.
  command(platform, "c1", "test_mode",
          {{"device", "smoke-1"}, {"on", true}, {"minutes", 30}, {"by", "tech 7"}});
  REQUIRE(replied_ok(platform, "c1"));
  sim.send("1 state 1");
  auto test_alarm = event_of(platform, "fire_alarm");
  REQUIRE(test_alarm);
  CHECK((*test_alarm)["test"] == true);
  CHECK((*test_alarm)["category"] == "test");
  CHECK((*test_alarm)["severity"] == "info");

  // Test mode ends with the detector still in fire: the test alarm ends, a real one is raised and
  // drives the siren.
  command(platform, "c2", "test_mode", {{"device", "smoke-1"}, {"on", false}, {"by", "tech 7"}});
  REQUIRE(replied_ok(platform, "c2"));
  auto real = event_of(platform, "fire_alarm", 1);
  REQUIRE(real);
  CHECK((*real)["test"] == false);
  auto sounded = event_of(platform, "linkage_done");
  REQUIRE(sounded);
  CHECK((*sounded)["alarm_id"] == (*real)["id"]);
  CHECK((*sounded)["device"]["name"] == "relay-1");
  CHECK((*sounded)["point"] == "siren");
  CHECK((*sounded)["value"] == 1.0);
  CHECK((*sounded)["detail"].get<std::string>().find("siren=1 written at") != std::string::npos);
  CHECK((*sounded)["detail"].get<std::string>().ends_with("and read back"));

  // Acknowledged and cleared: the siren is switched off.
  sim.send("1 state 0");
  command(platform, "c3", "ack", {{"alarm_id", (*real)["id"]}, {"verdict", "real"}, {"by", "operator 12"}});
  REQUIRE(replied_ok(platform, "c3"));
  REQUIRE(event_of(platform, "fire_recovery", 1));
  auto silenced = event_of(platform, "linkage_done", 1);
  REQUIRE(silenced);
  CHECK((*silenced)["value"] == 0.0);

  // The relay stops answering: the next alarm's linkage fails, and says so.
  sim.send("2 answering 0");
  sim.send("1 state 1");
  auto failed = event_of(platform, "linkage_failed");
  REQUIRE(failed);
  CHECK((*failed)["severity"] == "major");
  CHECK((*failed)["detail"].get<std::string>().find("act by hand") != std::string::npos);
  CHECK(count(platform, "linkage_done") == 2);  // none for the test alarm

  // A technician shields the detector: its open alarm ends and the platform is told for how long;
  // lifted while the detector still reports fire, the alarm is raised again.
  command(platform, "c4", "shield",
          {{"device", "smoke-1"}, {"minutes", 120}, {"reason", "kitchen renovation dust"}, {"by", "tech 7"}});
  REQUIRE(replied_ok(platform, "c4"));
  auto shielded = event_of(platform, "device_shielded");
  REQUIRE(shielded);
  CHECK((*shielded)["actor"] == "tech 7");
  CHECK((*shielded)["category"] == "shielded");
  CHECK((*shielded)["until"].get<std::string>().size() == 29);
  CHECK((*shielded)["detail"].get<std::string>().find("kitchen renovation dust") != std::string::npos);
  REQUIRE(event_of(platform, "fire_recovery", 2));
  command(platform, "c5", "shield",
          {{"device", "smoke-9"}, {"minutes", 5}, {"reason", "x"}, {"by", "tech 7"}});
  REQUIRE_FALSE(replied_ok(platform, "c5"));  // no such device: refused
  command(platform, "c6", "unshield", {{"device", "smoke-1"}, {"by", "tech 7"}});
  REQUIRE(replied_ok(platform, "c6"));
  REQUIRE(event_of(platform, "device_unshielded"));
  REQUIRE(event_of(platform, "fire_alarm", 3));
  CHECK(daemon.stop(SIGTERM) == 0);
}
