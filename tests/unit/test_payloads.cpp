// Telemetry messages are written without a JSON tree (they run for every poll of the fleet); an
// independent parser reads them back here, with the strings a site file may hold.

#include "uplink/payloads.hpp"

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
