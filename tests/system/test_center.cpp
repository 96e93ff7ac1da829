// firegate-center as a control-room operator uses it: alerts numbered as they come, acknowledged by
// number with a verdict typed on its console, a device shielded for a time, and linkage shown as
// what was switched for which alarm. The real firegate-center, firegated, firegate-sim (two SD-1 and
// an RL-2 relay driving a sounder) and mosquitto; the platform's view is a probe on the broker.

#include "support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>

using namespace firegate;
using namespace firegate::test;
using json = nlohmann::json;

TEST_CASE(
    "firegate-center: alerts numbered - ack N with a verdict and shield DEVICE 2h from its console - "
    "linkage shown as linkage") {
  temp_dir dir;
  broker mosquitto(dir);
  mqtt_probe platform(mosquitto.port(), "firegate/#");
  simulator sim(dir, std::vector<std::string>{"--devices", "SD-1:1", "SD-1:2", "RL-2:3"});
  auto text = sd1_site_config(dir / "fg.db", mosquitto.port(), sim.port(), 2);
  // A remote shield silences a detector: the site allows it (not a default command).
  text.replace(text.find("keepalive_s = 5\n"), 16,
               "keepalive_s = 5\ncommands = [\"ack\", \"shield\", \"unshield\", \"status\"]\n");
  text += sounder_linkage(3, R"("smoke-1", "smoke-2")");
  std::ofstream(dir / "fg.toml") << text;
  child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log");
  child center({firegate_center_path(), "--port", std::to_string(mosquitto.port())}, dir / "center.log",
               /*stdin_pipe=*/true);
  REQUIRE(platform.wait_for([](auto& m) { return m.topic.ends_with("/telemetry"); }, 10s));
  const auto center_says = [&](const std::string& what, std::chrono::milliseconds within = 10s) {
    const bool said = wait_until([&] { return center.log_text().find(what) != std::string::npos; }, within);
    if (!said) UNSCOPED_INFO("firegate-center's output:\n" << center.log_text());
    return said;
  };
  REQUIRE(center_says("watching firegate/#"));

  // A fire: alert #1, and the sounder switched for it, shown as linkage.
  sim.send("1 state 1");
  const auto fire = wait_event_where(platform, "fire_alarm", [](const json&) { return true; });
  REQUIRE(fire);
  const auto fire_id = (*fire)["id"].get<std::string>();
  REQUIRE(center_says("#1 FIRE ALARM"));
  REQUIRE(center_says("LINKAGE DONE"));
  CHECK(center_says("switched relay-1.siren to 1"));
  CHECK(center_says("for alarm " + fire_id));
  CHECK(center.log_text().find("ends alarm " + fire_id) == std::string::npos);  // nothing has ended it

  // The operator acknowledges #1 as a false alarm: the gateway takes it, and the acknowledgement
  // comes back under the same number.
  center.send("ack 1 false");
  const auto acked = wait_event_where(platform, "alarm_acknowledged",
                                      [&](const json& e) { return e.value("alarm_id", "") == fire_id; });
  REQUIRE(acked);
  CHECK((*acked)["confirmation"] == "false");
  CHECK((*acked)["actor"] == "firegate-center operator");
  CHECK(center_says("#1 ACKNOWLEDGED"));

  // smoke-2 shielded for two hours with a reason.
  center.send("shield smoke-2 2h dust from works");
  const auto shielded = wait_event_where(platform, "device_shielded", [](const json&) { return true; });
  INFO(center.log_text());
  INFO(daemon.log_text());
  REQUIRE(shielded);
  CHECK((*shielded)["device"]["name"] == "smoke-2");
  CHECK((*shielded)["detail"].get<std::string>().find("for 120 min: dust from works") != std::string::npos);
  center.send("unshield smoke-2");
  REQUIRE(wait_event_where(platform, "device_unshielded", [](const json&) { return true; }));

  // Mistakes are answered on the console.
  center.send("ack 9 real");
  CHECK(center_says("?? no alert #9"));
  center.send("ack 1 maybe");
  CHECK(center_says("?? ack N real|false|test"));
  center.send("ack 1");
  CHECK(center_says("?? ack N real|false|test"));
  center.send("list");
  CHECK(center_says("#1 fire_alarm smoke-1 " + fire_id));
}
