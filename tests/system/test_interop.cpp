// Proves firegate-sim speaks Modbus as independent masters expect: mbpoll reads the SD-1 input
// registers over TCP (also with function 03), sees a scripted change, writes the reset command with
// function 06, and gets exceptions 2 and 3 for a register or command the device does not have;
// pymodbus does the same over TCP and over RTU on a pty pair.

#include "support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <map>

using namespace firegate::test;

TEST_CASE("mbpoll reads firegate-sim's SD-1 registers and sees a scripted fire") {
  temp_dir dir;
  simulator sim(dir, 3);
  const auto port = sim.port();
  std::map<int, long> v;
  std::string out;
  REQUIRE(mbpoll(dir, port, "2", "3", "1", "4", v, out) == 0);
  INFO(out);
  CHECK(v.at(1) == 0);                          // state: normal
  CHECK(v.at(2) <= 5);                          // smoke: clean air, 0.01 dB/m
  CHECK((v.at(3) >= 150 && v.at(3) <= 300));    // temperature, 0.1 °C
  CHECK((v.at(4) >= 2380 && v.at(4) <= 2420));  // supply, 0.01 V

  sim.send("2 state 1");
  REQUIRE(wait_until([&] { return sim.log_text().find("change unit=2 state=1") != std::string::npos; }, 5s));
  v.clear();
  REQUIRE(mbpoll(dir, port, "2", "4", "1", "2", v, out) == 0);  // -t 4: holding registers, fc 03
  CHECK(v.at(1) == 1);
  CHECK(v.at(2) >= 25);  // a fire shows in the smoke value too
}

TEST_CASE("mbpoll gets exception 2 for a register SD-1 does not have") {
  temp_dir dir;
  simulator sim(dir, 3);
  const auto port = sim.port();
  std::map<int, long> v;
  std::string out;
  CHECK(mbpoll(dir, port, "1", "3", "6", "2", v, out) != 0);
  CHECK(out.find("Illegal data address") != std::string::npos);
  CHECK(v.empty());
}

TEST_CASE("mbpoll writes SD-1's reset command with fc 06 and gets exception 3 for an unknown command") {
  temp_dir dir;
  simulator sim(dir, 3);
  const auto port = sim.port();
  sim.send("1 state 1");
  REQUIRE(wait_until([&] { return sim.log_text().find("change unit=1 state=1") != std::string::npos; }, 5s));
  std::map<int, long> v;
  std::string out;
  // Reference 17 is register 0x0010, the command register; 2 = reset.
  REQUIRE(mbpoll(dir, port, "1", "4", "17", "1", v, out, "2") == 0);
  INFO(out);
  CHECK(out.find("Written 1 references") != std::string::npos);
  CHECK(sim.log_text().find("command unit=1 reset") != std::string::npos);
  v.clear();
  REQUIRE(mbpoll(dir, port, "1", "3", "1", "1", v, out) == 0);
  CHECK(v.at(1) == 0);  // the reset returned the detector to normal

  CHECK(mbpoll(dir, port, "1", "4", "17", "1", v, out, "7") != 0);
  CHECK(out.find("Illegal data value") != std::string::npos);
}

namespace {

/// Runs tests/interop/pymodbus_client.py against firegate-sim and returns what it printed.
nlohmann::json pymodbus_client(const temp_dir& dir, std::vector<std::string> where) {
  std::vector<std::string> argv{"/usr/bin/python3", source_dir() + "/tests/interop/pymodbus_client.py"};
  argv.insert(argv.end(), where.begin(), where.end());
  child c(argv, dir / "pymodbus-client.log");
  const int rc = c.stop(0, 20s);
  const auto out = c.log_text();
  INFO(out);
  REQUIRE(rc == 0);
  return nlohmann::json::parse(out.substr(out.rfind("{\"")));
}

void check_pymodbus_view(const nlohmann::json& j) {
  INFO(j.dump());
  // state, smoke (0.01 dB/m), temperature (0.1 degC), supply (0.01 V) as the simulator holds them
  REQUIRE(j["fc04"].is_array());
  CHECK(j["fc04"][0] == 0);
  CHECK(j["fc04"][1].get<int>() <= 5);
  CHECK(j["fc04"][3].get<int>() >= 2380);
  CHECK(j["fc03"].is_array());
  CHECK(j["missing_exception"] == 2);
  CHECK(j["reset"] == nlohmann::json::array({16, 2}));
  CHECK(j["bad_command_exception"] == 3);
}

}  // namespace

TEST_CASE("pymodbus reads firegate-sim over Modbus TCP and writes its command register") {
  temp_dir dir;
  simulator sim(dir, 2);
  check_pymodbus_view(pymodbus_client(dir, {"--port", std::to_string(sim.port())}));
  CHECK(sim.wait_for_log("command unit=1 reset"));
}

TEST_CASE("pymodbus reads firegate-sim over Modbus RTU on a pty pair") {
  temp_dir dir;
  pty_pair line(dir);
  simulator sim(dir, {"--serial", line.b(), "--devices", "SD-1:1-2"});
  check_pymodbus_view(pymodbus_client(dir, {"--serial", line.a()}));
  CHECK(sim.wait_for_log("command unit=1 reset"));
}
