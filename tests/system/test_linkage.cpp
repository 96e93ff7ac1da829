// Linkage and test mode end to end: a real firegated, firegate-sim serving an SD-1 detector and an
// RL-2 relay module, a real mosquitto. A test alarm drives nothing; the real alarm sounds the siren
// (written and read back from the relay), its end silences it, and a relay that does not answer is
// reported as a failed linkage for someone to act by hand. Commands go over the cmd topic.

#include "support.hpp"

#include <fmt/format.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <csignal>
#include <fstream>
#include <regex>
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
  platform.publish("firegate/site-test/gw-test/cmd", command_text(id, name, args));
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
  // Shield and test mode are off by default: this site turns them on.
  auto text = std::regex_replace(
      sd1_site_config(dir / "fg.db", mosquitto.port(), sim.port(), 1), std::regex("keepalive_s = 5\n"),
      "keepalive_s = 5\ncommands = [\"ack\", \"shield\", \"unshield\", \"test_mode\"]\n");
  text += sounder_linkage(2, R"("smoke-1")");
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

namespace {

/// The relay's siren coil as an independent master (mbpoll) reads it from the simulator: 0, 1, or
/// -1 when mbpoll failed.
long siren_read_back(const temp_dir& dir, std::uint16_t port, const std::string& unit) {
  std::map<int, long> values;
  std::string out;
  if (mbpoll(dir, port, unit, "0", "1", "1", values, out) != 0 || !values.contains(1)) return -1;
  return values.at(1);
}

/// The first event of `type` whose detail has `text`.
std::optional<json> event_with(mqtt_probe& platform, const std::string& type, const std::string& text,
                               std::chrono::milliseconds timeout = 10s) {
  return wait_event_where(
      platform, type, [&](const json& j) { return j.value("detail", "").find(text) != std::string::npos; },
      timeout);
}

}  // namespace

TEST_CASE(
    "linkage: two detectors in fire hold the sounder until the last ends - a restart during the fire "
    "re-asserts it - an escalation re-asserts it after a hand switch - a technician's write is refused "
    "unless forced") {
  temp_dir dir;
  broker mosquitto(dir);
  mqtt_probe platform(mosquitto.port(), "firegate/#");
  simulator sim(dir, std::vector<std::string>{"--devices", "SD-1:1", "SD-1:2", "RL-2:3"});
  auto text = sd1_site_config(dir / "fg.db", mosquitto.port(), sim.port(), 2, /*latch_fire=*/false);
  text += sounder_linkage(3, R"("smoke-1", "smoke-2")") + "[alarms]\nescalate_after_s = 3\n";
  std::ofstream(dir / "fg.toml") << text;
  auto daemon = std::make_unique<child>(
      std::vector<std::string>{firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log");
  INFO(daemon->log_text());
  REQUIRE(platform.wait_for([](auto& m) { return m.topic.ends_with("/telemetry"); }, 10s));
  CHECK(siren_read_back(dir, sim.port(), "3") == 0);

  // Two detectors in fire: the first sounds the siren, the second holds it too.
  sim.send("1 state 1");
  auto first = event_of(platform, "fire_alarm");
  REQUIRE(first);
  auto sounded = event_of(platform, "linkage_done");
  REQUIRE(sounded);
  CHECK((*sounded)["value"] == 1.0);
  CHECK((*sounded)["alarm_id"] == (*first)["id"]);
  sim.send("2 state 1");
  auto second = event_of(platform, "fire_alarm", 1);
  REQUIRE(second);
  CHECK(siren_read_back(dir, sim.port(), "3") == 1);

  // The first clears: the siren stays on while the second fire is open. The daemon's own read goes
  // through the bus after any write queued by the recovery, so it sees what a reset would have done.
  sim.send("1 state 0");
  auto ended = event_of(platform, "fire_recovery");
  REQUIRE(ended);
  CHECK((*ended)["alarm_id"] == (*first)["id"]);
  auto through_bus =
      ctl(dir, {"--json", "read", "--bus", "tcp-1", "--unit", "3", "--table", "coil", "--address", "0"});
  REQUIRE(through_bus.exit == 0);
  CHECK(through_bus.doc()["values"] == json::array({1}));
  CHECK(siren_read_back(dir, sim.port(), "3") == 1);
  CHECK(count(platform, "linkage_done") == 1);

  // A technician's write to the held output is refused, naming the open alarm.
  auto refused =
      ctl(dir, {"write", "--bus", "tcp-1", "--unit", "3", "--table", "coil", "--address", "0", "0"});
  INFO(refused.out);
  INFO(daemon->log_text());
  CHECK(refused.exit == 1);
  CHECK(refused.out.find("held by open alarms") != std::string::npos);
  CHECK(refused.out.find((*second)["id"].get<std::string>()) != std::string::npos);
  CHECK(refused.out.find("--force") != std::string::npos);
  CHECK(siren_read_back(dir, sim.port(), "3") == 1);

  // Forced: written, logged and reported with who did it; the next escalation of the unacknowledged
  // fire finds the siren off and switches it on again.
  auto forced = ctl(
      dir, {"write", "--bus", "tcp-1", "--unit", "3", "--table", "coil", "--address", "0", "--force", "0"});
  INFO(forced.out);
  CHECK(forced.exit == 0);
  auto overridden = event_of(platform, "linkage_overridden");
  REQUIRE(overridden);
  CHECK((*overridden)["device"]["name"] == "relay-1");
  CHECK((*overridden)["actor"].get<std::string>().find("(firegatectl)") != std::string::npos);
  CHECK((*overridden)["detail"].get<std::string>().find((*second)["id"].get<std::string>()) !=
        std::string::npos);
  auto reasserted = event_with(platform, "linkage_done", "re-asserted on the escalation", 30s);
  REQUIRE(reasserted);
  CHECK((*reasserted)["value"] == 1.0);
  CHECK((*reasserted)["alarm_id"] == (*second)["id"]);
  CHECK(siren_read_back(dir, sim.port(), "3") == 1);

  // A restart during the fire, the siren switched off by hand meanwhile: the restored alarm holds
  // the output again, and it is written back on.
  REQUIRE(daemon->stop(SIGTERM) == 0);
  daemon.reset();
  std::map<int, long> ignored;
  std::string out;
  REQUIRE(mbpoll(dir, sim.port(), "3", "0", "1", "1", ignored, out, "0") == 0);
  CHECK(siren_read_back(dir, sim.port(), "3") == 0);
  daemon = std::make_unique<child>(
      std::vector<std::string>{firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg2.log");
  auto restored = event_with(platform, "linkage_done", "restored at start", 30s);
  REQUIRE(restored);
  CHECK((*restored)["alarm_id"] == (*second)["id"]);
  CHECK(siren_read_back(dir, sim.port(), "3") == 1);

  // The last fire ends: now the siren is switched off.
  sim.send("2 state 0");
  auto last = event_with(platform, "linkage_done", "released", 30s);
  REQUIRE(last);
  CHECK((*last)["value"] == 0.0);
  CHECK((*last)["alarm_id"] == (*second)["id"]);
  CHECK(siren_read_back(dir, sim.port(), "3") == 0);
  CHECK(daemon->stop(SIGTERM) == 0);
}

TEST_CASE("a sounder on a line that cannot be opened: the daemon stays responsive and stops on SIGTERM") {
  // The linkage's reset write waits for an RS-485 adapter that is not plugged in. Before the fix the
  // bus retried open() at once while a write was queued, without yielding: the loop's one thread
  // spun at 100 % and nothing else ran (no control socket, no uplink, no SIGTERM).
  temp_dir dir;
  auto text = site_header(dir / "fg.db", free_port());
  text += fmt::format(R"([[buses]]
name = "rs485-1"
driver = "modbus_rtu"
device = "{}"
timeout_ms = 200
[[devices]]
name = "smoke-1"
bus = "rs485-1"
profile = "SD-1"
unit_id = 1
location = "kitchen"
[[devices]]
name = "relay"
bus = "rs485-1"
profile = "RL-2"
unit_id = 2
location = "kitchen"
[[linkage]]
name = "sounder"
on = "fire"
device = "relay"
write = "siren"
value = 1
reset_value = 0
)",
                      (dir / "ttyUSB-not-plugged").string());
  std::ofstream(dir / "site.toml") << text;
  const auto log = dir / "daemon.log";
  child daemon({firegated_path(), "-c", (dir / "site.toml").string()}, log);
  REQUIRE(wait_until(
      [&] { return read_text(log).find("modbus open failed bus=rs485-1") != std::string::npos; }, 10s));
  INFO(read_text(log));
  // CPU time the daemon uses while the write waits for the line, measured from the first failed open
  // (so the start's own work, slow on a loaded machine, is not counted) over at least a second and
  // a half of retries. A spinning loop uses all of it and leaves the control socket unanswered.
  const auto cpu_seconds = [&] {
    std::ifstream stat(fmt::format("/proc/{}/stat", daemon.pid()));
    std::string field;
    for (int i = 0; i < 13 && stat >> field; ++i) {
    }
    long utime = 0, stime = 0;
    stat >> utime >> stime;
    return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  };
  const double cpu_before = cpu_seconds();
  const auto from = std::chrono::steady_clock::now();
  auto status = ctl(dir, {"--json", "status"});
  CHECK(status.exit == 0);
  REQUIRE(wait_until([&] { return std::chrono::steady_clock::now() - from >= 1500ms; }, 5s));
  status = ctl(dir, {"--json", "status"});
  CHECK(status.exit == 0);
  const double cpu_s = cpu_seconds() - cpu_before;
  const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - from).count();
  INFO("cpu " << cpu_s << " s of " << wall_s << " s");
  CHECK(cpu_s < 0.5 * wall_s);
  CHECK(daemon.stop(SIGTERM) == 0);
}
