// An uplink whose link dies without closing: no FIN, no RST, bytes simply stop (a cellular carrier
// that dropped the connection from its NAT, a far end without power). A real firegated publishes to
// a real mosquitto through tests/support/tcp_proxy.hpp's freezing proxy; the platform's probe is on
// the broker itself. keepalive_s is 600 s, so MQTT's keep-alive would find the dead link only after
// 15 minutes: the alarm arrives within seconds only through the acknowledgement deadline
// (ack_timeout_s), which drops the connection and makes a new one.

#include "support.hpp"
#include "tcp_proxy.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <regex>

using namespace firegate;
using namespace firegate::test;
using json = nlohmann::json;

TEST_CASE(
    "uplink: a fire raised on a link that died without closing reaches the platform after ack_timeout_s") {
  temp_dir dir;
  broker mosquitto(dir);
  mqtt_probe platform(mosquitto.port(), "firegate/#");
  freezing_proxy link(mosquitto.port());
  simulator sim(dir, 1);
  // No telemetry: the fire alarm is the only message the deadline can be waiting for.
  auto text = std::regex_replace(sd1_site_config(dir / "fg.db", link.port(), sim.port(), 1),
                                 std::regex("keepalive_s = 5\n"),
                                 "keepalive_s = 600\nack_timeout_s = 2\ntelemetry = false\n");
  std::ofstream(dir / "fg.toml") << text;
  child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log");
  REQUIRE(platform.wait_for([](auto& m) { return m.topic.ends_with("/status"); }, 10s));
  REQUIRE(link.accepted() == 1);

  link.freeze();
  const auto frozen_at = std::chrono::steady_clock::now();
  sim.send("1 smoke 2.5");
  sim.send("1 state 1");
  auto fire = wait_event_where(
      platform, "fire_alarm", [](const json&) { return true; }, 20s);
  const auto took = std::chrono::steady_clock::now() - frozen_at;
  const auto log = daemon.log_text();  // as it is now, with what the deadline did
  INFO(log);
  REQUIRE(fire);
  CHECK((*fire)["device"]["name"] == "smoke-1");
  // It went over a second connection, made after the first published it and heard nothing back.
  CHECK(link.accepted() >= 2);
  CHECK(took >= 2s);
  CHECK(log.find("uplink no acknowledgement") != std::string::npos);
  CHECK(log.find("action=reconnect") != std::string::npos);
  std::size_t connects = 0;
  for (auto at = log.find("uplink connected"); at != std::string::npos;
       at = log.find("uplink connected", at + 1)) {
    ++connects;
  }
  CHECK(connects >= 2);
}
