// Proves firegate-sim speaks Modbus TCP as an independent master expects: mbpoll reads the SD-1
// input registers (also with function 03), sees a scripted change, writes the reset command with
// function 06, and gets exceptions 2 and 3 for a register or command the device does not have.

#include "support.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <regex>

using namespace firegate::test;

namespace {

/// Runs mbpoll once (a read, or a write of `write_value` when given); returns its exit code and the
/// values it printed by reference number.
int mbpoll(const temp_dir& dir, std::uint16_t port, const std::string& unit, const std::string& table,
           const std::string& ref, const std::string& count, std::map<int, long>& values, std::string& out,
           const std::string& write_value = {}) {
  static int n = 0;
  const auto log = dir / ("mbpoll-" + std::to_string(++n) + ".log");
  std::vector<std::string> argv{
      "/usr/bin/mbpoll",   "-m", "tcp", "-a", unit, "-t", table, "-r", ref, "-o", "2", "-p",
      std::to_string(port)};
  if (write_value.empty()) {
    argv.insert(argv.end(), {"-c", count, "-1", "127.0.0.1"});
  } else {
    argv.insert(argv.end(), {"127.0.0.1", write_value});  // mbpoll refuses -c and -1 with a write
  }
  child c(argv, log);
  const int rc = c.stop(0, 10s);
  out = c.log_text();
  std::regex line(R"(\[(\d+)\]:\s+(-?\d+))");
  for (std::sregex_iterator it(out.begin(), out.end(), line), end; it != end; ++it) {
    values[std::stoi((*it)[1])] = std::stol((*it)[2]);
  }
  return rc;
}

}  // namespace

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
