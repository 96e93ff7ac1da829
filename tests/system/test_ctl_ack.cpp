// firegatectl ack as a technician on site uses it: the short id the tables show, a verdict said
// each time, and a refusal that says what became of an alarm that is no longer open. The real
// firegatectl against a running firegated, firegate-sim detectors and a real mosquitto; no
// control room acknowledges anything here.

#include "support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <fstream>
#include <sstream>

using namespace firegate;
using namespace firegate::test;
using json = nlohmann::json;

TEST_CASE(
    "firegatectl ack: a short id and a verdict said each time - not found says acknowledged, cleared or "
    "unknown") {
  temp_dir dir;
  broker mosquitto(dir);
  mqtt_probe platform(mosquitto.port(), "firegate/#");
  simulator sim(dir, 2);
  // Not latched: a fire ends when its detector clears, acknowledged or not.
  std::ofstream(dir / "fg.toml") << sd1_site_config(dir / "fg.db", mosquitto.port(), sim.port(), 2,
                                                    /*latch_fire=*/false);
  child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log");
  INFO(daemon.log_text());
  REQUIRE(platform.wait_for([](auto& m) { return m.topic.ends_with("/telemetry"); }, 10s));

  sim.send("1 state 1");
  const auto first = wait_event_where(platform, "fire_alarm", [](const json&) { return true; });
  REQUIRE(first);
  const auto first_id = (*first)["id"].get<std::string>();
  const auto first_short = first_id.substr(0, 8);

  // The table shows the short id, the JSON the whole one.
  const auto table = ctl(dir, {"alarms"});
  REQUIRE(table.exit == 0);
  CHECK(table.out.find(first_short + " ") != std::string::npos);
  CHECK(table.out.find(first_id) == std::string::npos);

  // No verdict: refused before anything is sent, naming the three.
  const auto unsaid = ctl(dir, {"ack", first_short});
  CHECK(unsaid.exit == 2);
  CHECK(unsaid.out.find("real|false|test") != std::string::npos);
  // Too short, or not an id at all.
  const auto too_short = ctl(dir, {"ack", first_id.substr(0, 3), "real"});
  CHECK(too_short.exit == 1);
  CHECK(too_short.out.find("at least 4 characters") != std::string::npos);
  CHECK(ctl(dir, {"ack", "no-such-alarm", "real"}).out.find("not an alarm id") != std::string::npos);

  // The short id and the verdict: acknowledged as false, the detector still in fire.
  const auto acked = ctl(dir, {"--json", "ack", first_short, "false", "--by", "tech 7"});
  INFO(acked.out);
  REQUIRE(acked.exit == 0);
  const auto ack_event = acked.doc()["events"][0];
  CHECK(ack_event["type"] == "alarm_acknowledged");
  CHECK(ack_event["alarm_id"] == first_id);
  CHECK(ack_event["verdict"] == "false");

  // Again while it is open: already acknowledged, by whom and as what.
  const auto again = ctl(dir, {"ack", first_short, "real"});
  CHECK(again.exit == 1);
  CHECK(again.out.find("already acknowledged by tech 7") != std::string::npos);

  // It clears: no longer open, and the refusal says it was acknowledged.
  sim.send("1 state 0");
  REQUIRE(wait_event_where(platform, "fire_recovery",
                           [&](const json& e) { return e.value("alarm_id", "") == first_id; }));
  REQUIRE(wait_until([&] { return ctl(dir, {"--json", "alarms"}).doc()["open"].empty(); }, 10s));
  const auto after = ctl(dir, {"--json", "ack", first_short, "real"});
  CHECK(after.exit == 1);
  CHECK(after.doc()["state"] == "acknowledged");
  CHECK(after.doc()["error"].get<std::string>().find("as false") != std::string::npos);

  // A second fire clears with nobody acknowledging it: cleared, nothing left to acknowledge.
  sim.send("2 state 1");
  const auto second = wait_event_where(platform, "fire_alarm",
                                       [](const json& e) { return e["device"]["name"] == "smoke-2"; });
  REQUIRE(second);
  const auto second_id = (*second)["id"].get<std::string>();
  sim.send("2 state 0");
  REQUIRE(wait_event_where(platform, "fire_recovery",
                           [&](const json& e) { return e.value("alarm_id", "") == second_id; }));
  REQUIRE(wait_until([&] { return ctl(dir, {"--json", "alarms"}).doc()["open"].empty(); }, 10s));
  const auto cleared = ctl(dir, {"--json", "ack", second_id.substr(0, 8), "real"});
  CHECK(cleared.exit == 1);
  CHECK(cleared.doc()["state"] == "cleared");
  CHECK(cleared.doc()["error"].get<std::string>().find("without an acknowledgement") != std::string::npos);

  // Never here.
  const auto unknown = ctl(dir, {"--json", "ack", "0000dead", "real"});
  CHECK(unknown.exit == 1);
  CHECK(unknown.doc()["state"] == "unknown");

  // The history names each event's alarm by its short id: both fires, their acknowledgement and
  // their recoveries.
  const auto history = ctl(dir, {"alarms", "--history"});
  REQUIRE(history.exit == 0);
  INFO(history.out);
  std::size_t first_rows = 0, second_rows = 0;
  std::istringstream lines(history.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.find(" " + first_short + " ") != std::string::npos) ++first_rows;
    if (line.find(" " + second_id.substr(0, 8) + " ") != std::string::npos) ++second_rows;
  }
  CHECK(first_rows == 3);   // raised, acknowledged, recovered
  CHECK(second_rows == 2);  // raised, recovered

  // The daemon stops during a tail: the tail says so, and ends with exit code 3 (not running).
  child tail({firegatectl_path(), "--socket", (dir / "control.sock").string(), "tail"}, dir / "tail.out");
  REQUIRE(wait_until([&] { return read_text(dir / "tail.out").find("smoke-1") != std::string::npos; }, 10s));
  CHECK(daemon.stop(SIGTERM) == 0);
  CHECK(tail.stop(0, 10s) == 3);  // signal 0: only waits for the exit
  const auto said = read_text(dir / "tail.out");
  INFO(said);
  CHECK(said.find("firegated stopped") != std::string::npos);
  CHECK(said.find("before answering") == std::string::npos);
}
