// Every alarm carries its evidence: a real firegated polling an SD-1 and a GD-1 on firegate-sim, a
// real mosquitto, and firegate-center as the control room reads it. The SD-1's fire says "state =
// fire" and carries the smoke obscuration and temperature of the poll that decided it; the GD-1's
// high-gas alarm carries 60 %LEL against its own 50 %LEL setting; firegatectl alarms shows both
// states by name.

#include "support.hpp"

#include <fmt/format.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <fstream>

using namespace firegate::test;
using json = nlohmann::json;

namespace {

std::optional<json> alarm_of(mqtt_probe& platform, const std::string& type, const std::string& device) {
  return wait_event_where(platform, type,
                          [&](const json& j) { return j["device"].value("name", "") == device; });
}

const json* evidence(const json& event, const std::string& name) {
  return event.contains("evidence") ? find_by(event["evidence"], "name", name) : nullptr;
}

}  // namespace

TEST_CASE(
    "evidence: an SD-1 fire says state = fire with its smoke and temperature - a GD-1 high-gas alarm its "
    "concentration against its setting - firegate-center prints them") {
  temp_dir dir;
  broker mosquitto(dir);
  mqtt_probe platform(mosquitto.port(), "firegate/#");
  simulator sim(dir, std::vector<std::string>{"--devices", "SD-1:1", "GD-1:2"});
  auto text = sd1_site_config(dir / "fg.db", mosquitto.port(), sim.port(), 1);
  text += R"([[devices]]
name = "gas-kitchen"
bus = "tcp-1"
profile = "GD-1"
unit_id = 2
location = "1F kitchen, by the gas stove"
)";
  std::ofstream(dir / "fg.toml") << text;
  child center({firegate_center_path(), "--port", std::to_string(mosquitto.port())}, dir / "center.log");
  child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log");
  INFO(daemon.log_text());
  REQUIRE(platform.wait_for([](auto& m) { return m.topic.ends_with("/telemetry"); }, 10s));

  // Smoke first, then the detector's own decision: the same poll carries both.
  sim.send("1 smoke 2.5");
  sim.send("1 temperature 41.5");
  sim.send("1 state 1");
  auto fire = alarm_of(platform, "fire_alarm", "smoke-1");
  REQUIRE(fire);
  CHECK((*fire)["point"] == "state");
  CHECK((*fire)["value"] == 1.0);
  CHECK((*fire)["value_label"] == "fire");
  const auto* smoke = evidence(*fire, "smoke");
  REQUIRE(smoke);
  CHECK((*smoke)["value"].get<double>() == Approx(2.5).margin(0.03));  // it wanders by 0.02
  CHECK((*smoke)["unit"] == "dB/m");
  const auto* temperature = evidence(*fire, "temperature");
  REQUIRE(temperature);
  // The simulator lets the temperature wander by up to 0.3 °C around what was set.
  CHECK((*temperature)["value"].get<double>() == Approx(41.5).margin(0.35));
  CHECK((*temperature)["unit"] == "°C");

  // 60 %LEL: the simulated GD-1 decides high alarm against its own 50 %LEL setting.
  sim.send("2 concentration 60");
  auto gas = alarm_of(platform, "fire_alarm", "gas-kitchen");
  REQUIRE(gas);
  CHECK((*gas)["rule"] == "high_alarm");
  CHECK((*gas)["value_label"] == "high_alarm");
  const auto* concentration = evidence(*gas, "concentration");
  REQUIRE(concentration);
  // Set to 60, it wanders by up to 0.3 %LEL as the simulator's sensors do: the poll that decides may
  // come after a wander (a loaded machine, a sanitizer build).
  CHECK((*concentration)["value"].get<double>() == Approx(60).margin(0.35));
  CHECK((*concentration)["unit"] == "%LEL");
  const auto* setting = evidence(*gas, "high_alarm_setting");
  REQUIRE(setting);
  CHECK((*setting)["value"].get<double>() == Approx(50));

  // The technician's view of what is open: the values as what they mean.
  const auto open = ctl(dir, {"alarms"});
  CHECK(open.out.find("state = fire: detector reports fire") != std::string::npos);
  CHECK(open.out.find("state = high_alarm: combustible gas over the high alarm setting") !=
        std::string::npos);

  // The control room's view.
  REQUIRE(wait_until([&] { return center.log_text().find("evidence concentration = ") != std::string::npos; },
                     10s));
  const auto shown = center.log_text();
  CHECK(shown.find("reading  state = fire (1.0)") != std::string::npos);
  // The fire's evidence as the alarm carried it (the temperature wanders: its digits are the alarm's).
  const auto evidence_line = shown.substr(shown.find("evidence smoke = "), 80);
  CHECK(evidence_line.starts_with("evidence smoke = 2."));
  CHECK(evidence_line.find(" dB/m, temperature = 41.") != std::string::npos);
  CHECK(evidence_line.find(" °C") != std::string::npos);
  const auto gas_line = shown.substr(shown.find("evidence concentration = "), 80);
  CHECK((gas_line.starts_with("evidence concentration = 60") ||
         gas_line.starts_with("evidence concentration = 59.")));
  CHECK(gas_line.find(" %LEL, high_alarm_setting = 50 %LEL") != std::string::npos);
  CHECK(daemon.stop(SIGTERM) == 0);
}
