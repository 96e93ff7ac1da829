// The Modbus drivers against pymodbus's server, an independent implementation in another language
// (tests/interop/pymodbus_server.py): SD-1 and EFD-4T over Modbus TCP and over RTU on a pty pair
// with two units on the line, a change made in the server seen by the driver, and a verified write.

#include "driver_harness.hpp"
#include "modbus/modbus_driver.hpp"
#include "support.hpp"

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

using namespace firegate;
using namespace std::chrono_literals;
using test::recording_sink;
using test::shipped_profile;

namespace {

std::unique_ptr<test::child> pymodbus_server(const test::temp_dir& dir, std::vector<std::string> where) {
  std::vector<std::string> argv{"/usr/bin/python3", test::source_dir() + "/tests/interop/pymodbus_server.py"};
  argv.insert(argv.end(), where.begin(), where.end());
  return std::make_unique<test::child>(argv, dir / "pymodbus-server.log", true);
}

std::vector<modbus::modbus_device_settings> sd1_and_efd() {
  return {{"smoke", 1, shipped_profile("SD-1"), 300ms, 100ms, {}, {}},
          {"efd", 2, shipped_profile("EFD-4T"), 300ms, 100ms, {}, {}}};
}

void exercise(const config::bus_config& bus, test::child& server) {
  boost::asio::io_context io;
  recording_sink sink;
  auto driver = create_driver(io.get_executor(), bus, sink);
  driver->start();
  const auto last = [&](const std::string& device, const std::string& point) -> std::optional<double> {
    for (auto it = sink.readings.rbegin(); it != sink.readings.rend(); ++it) {
      if (it->device == device && it->point == point) return it->value;
    }
    return std::nullopt;
  };
  INFO(server.log_text());
  REQUIRE(test::run_until(
      io, [&] { return last("smoke", "supply_voltage") && last("efd", "mode"); }, 20s));
  CHECK(last("smoke", "smoke") == Approx(0.37));
  CHECK(last("smoke", "temperature") == Approx(21.5));
  CHECK(last("efd", "residual_current") == 35.0);
  CHECK(last("efd", "cable_temperature_1") == Approx(28.1));
  CHECK(last("efd", "leakage_alarm_setting") == 300.0);

  server.send("1 4 0 1");  // SD-1 state: fire
  REQUIRE(test::run_until(
      io, [&] { return last("smoke", "state") == 1.0; }, 5s));

  std::optional<write_outcome> outcome;
  driver->write({"efd", "mode", 2}, [&](const write_outcome& o) { outcome = o; });
  REQUIRE(test::run_until(
      io, [&] { return outcome.has_value(); }, 5s));
  INFO(outcome->detail);
  CHECK_FALSE(outcome->error);
  CHECK(outcome->verified);
  REQUIRE(test::run_until(
      io, [&] { return last("efd", "mode") == 2.0; }, 5s));
  for (const auto& c : driver->counters()) {
    CHECK(c.online);
    CHECK(c.timeouts == 0);
    CHECK(c.crc_errors == 0);
  }
  CHECK(sink.statuses.empty());
  driver->stop();
  io.run_for(50ms);
}

}  // namespace

TEST_CASE("pymodbus: the TCP driver polls pymodbus's Modbus TCP server") {
  test::temp_dir dir;
  const auto port = test::free_port();
  auto server = pymodbus_server(dir, {"--port", std::to_string(port)});
  REQUIRE(test::wait_until([&] { return test::port_open(port); }, 20s));
  auto s = std::make_shared<modbus::modbus_tcp_settings>();
  s->host = "127.0.0.1";
  s->port = port;
  s->timeout = 1000ms;
  s->devices = sd1_and_efd();
  exercise({"tcp-1", "modbus_tcp", s}, *server);
}

TEST_CASE("pymodbus: the RTU driver polls pymodbus's RTU server - two units on a pty pair") {
  test::temp_dir dir;
  test::pty_pair line(dir);
  auto server = pymodbus_server(dir, {"--serial", line.b()});
  REQUIRE(test::wait_until([&] { return server->log_text().find("serving rtu") != std::string::npos; }, 20s));
  auto s = std::make_shared<modbus::modbus_rtu_settings>();
  s->line = {line.a(), 9600, 'N', 8, 1};
  s->timeout = 1000ms;
  s->devices = sd1_and_efd();
  exercise({"rs485-1", "modbus_rtu", s}, *server);
}
