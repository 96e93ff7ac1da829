// Proves the Modbus TCP driver against libmodbus's server, an independent implementation: it reads
// the shipped profiles' registers with the right scaling, bits, sentinels and word order, keeps
// polling after exception answers, reports a device that stops answering as offline after the
// configured failures, and online again when it answers.

#include "driver_harness.hpp"
#include "libmodbus_server.hpp"
#include "modbus/modbus_driver.hpp"
#include "modbus/profile.hpp"
#include "support.hpp"

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

using namespace firegate;
using namespace std::chrono_literals;
using test::recording_sink;
using test::run_until;

namespace {

/// A driver on its own io_context polling a libmodbus server, with what it reported.
struct driver_fixture {
  test::libmodbus_server server;
  boost::asio::io_context io;
  recording_sink sink;
  config::bus_config bus;
  std::unique_ptr<bus_driver> driver;

  driver_fixture();
  ~driver_fixture() {
    driver->stop();
    io.run_for(50ms);
  }
  bool run_until(const std::function<bool()>& condition) { return test::run_until(io, condition, 5s); }
};

/// A shipped profile, loaded from config/profiles like the daemon does.
std::shared_ptr<const modbus::device_profile> shipped_profile(const std::string& name) {
  config::config_errors errors;
  auto library = modbus::load_profiles(test::source_dir() + "/config/profiles/modbus", errors);
  INFO(errors.format("profiles"));
  REQUIRE(errors.empty());
  return library.at(name);
}

config::bus_config make_bus(std::uint16_t port, const std::string& profile = "SD-1") {
  auto s = std::make_shared<modbus::modbus_tcp_settings>();
  s->host = "127.0.0.1";
  s->port = port;
  s->timeout = 200ms;
  s->poll_interval = 50ms;
  s->offline_after = 2;
  s->devices.push_back({"dev-1", 1, shipped_profile(profile)});
  return {"bus-1", "modbus_tcp", s};
}

driver_fixture::driver_fixture()
    : bus(make_bus(server.port())), driver(create_driver(io.get_executor(), bus, sink)) {}

}  // namespace

TEST_CASE("SD-1 registers read from libmodbus with scaling applied") {
  driver_fixture f;
  f.server.set_input_register(0, 1);       // state: fire
  f.server.set_input_register(1, 37);      // 0.37 dB/m
  f.server.set_input_register(2, 0xFF9C);  // -10.0 °C (int16)
  f.server.set_input_register(3, 2398);    // 23.98 V
  f.driver->start();
  REQUIRE(f.run_until([&] { return f.sink.readings.size() >= 4; }));
  CHECK(f.sink.last("state") == 1.0);
  CHECK(f.sink.last("smoke") == Approx(0.37));
  CHECK(f.sink.last("temperature") == Approx(-10.0));
  CHECK(f.sink.last("supply_voltage") == Approx(23.98));
  CHECK(f.sink.readings[0].device == "dev-1");
  CHECK(f.sink.readings[1].unit == "dB/m");

  f.server.set_input_register(0, 0);
  REQUIRE(f.run_until([&] { return f.sink.last("state") == 0.0; }));
}

TEST_CASE("a silent device goes offline after N failures and online when it answers") {
  driver_fixture f;
  f.driver->start();
  REQUIRE(f.run_until([&] { return !f.sink.readings.empty(); }));
  f.server.set_silent(true);
  REQUIRE(f.run_until([&] { return !f.sink.statuses.empty(); }));
  CHECK_FALSE(f.sink.statuses[0].online);
  CHECK(f.sink.statuses[0].error.message() == "no response before the timeout");
  CHECK(f.sink.statuses[0].detail.find("unit 1") != std::string::npos);
  f.server.set_silent(false);
  REQUIRE(f.run_until([&] { return f.sink.statuses.size() >= 2; }));
  CHECK(f.sink.statuses[1].online);
}

TEST_CASE("exception answers count as failures but keep the connection and the schedule") {
  driver_fixture f;
  f.server.set_failing(true);
  f.driver->start();
  REQUIRE(f.run_until([&] { return !f.sink.statuses.empty(); }));
  CHECK(f.sink.statuses[0].error.message().find("exception 4") == 0);
  f.server.set_failing(false);
  REQUIRE(f.run_until([&] { return !f.sink.readings.empty(); }));
}

TEST_CASE("EFD-4T through the driver: two blocks - alarm bits - a probe-open sentinel") {
  test::libmodbus_server server;
  server.set_holding_register(0x0000, 320);     // residual current 320 mA
  server.set_holding_register(0x0001, 653);     // cable 1: 65.3 °C
  server.set_holding_register(0x0002, 0x7FFF);  // cable 2: probe open
  server.set_holding_register(0x0010, 0x8001);  // alarm word: leakage + any alarm
  server.set_holding_register(0x0011, 0x0004);  // fault word: probe 2
  server.set_holding_register(0x0100, 300);     // leakage alarm setting
  server.set_holding_register(0x0106, 2);       // mode: trip
  boost::asio::io_context io;
  recording_sink sink;
  auto bus = make_bus(server.port(), "EFD-4T");
  auto driver = create_driver(io.get_executor(), bus, sink);
  driver->start();
  REQUIRE(run_until(
      io, [&] { return sink.readings.size() >= 34; }, 5s));
  driver->stop();
  io.run_for(50ms);
  auto find = [&](const std::string& point) {
    for (const auto& r : sink.readings) {
      if (r.point == point) return r;
    }
    FAIL("no reading of " << point);
    return reading{};
  };
  CHECK(find("residual_current").value == 320);
  CHECK(find("residual_current").unit == "mA");
  CHECK(find("cable_temperature_1").value == Approx(65.3));
  CHECK(find("cable_temperature_2").q == quality::bad);
  CHECK(find("leakage_alarm").value == 1);
  CHECK(find("any_alarm").value == 1);
  CHECK(find("arc_fault_alarm").value == 0);
  CHECK(find("temperature_probe_2_fault").value == 1);
  CHECK(find("leakage_alarm_setting").value == 300);
  CHECK(find("mode").value == 2);
}

TEST_CASE("GD-1-FLOAT-LE through the driver: float32 with the low word first") {
  test::libmodbus_server server;
  // 12.5 %LEL = 0x41480000, low word first.
  server.set_holding_register(0x0000, 0x0000);
  server.set_holding_register(0x0001, 0x4148);
  server.set_holding_register(0x0002, 1);  // low alarm
  boost::asio::io_context io;
  recording_sink sink;
  auto bus = make_bus(server.port(), "GD-1-FLOAT-LE");
  auto driver = create_driver(io.get_executor(), bus, sink);
  driver->start();
  REQUIRE(run_until(
      io, [&] { return sink.readings.size() >= 6; }, 5s));
  driver->stop();
  io.run_for(50ms);
  CHECK(sink.readings[0].point == "concentration");
  CHECK(sink.readings[0].value == Approx(12.5));
  CHECK(sink.readings[0].unit == "%LEL");
  CHECK(sink.readings[1].point == "state");
  CHECK(sink.readings[1].value == 1);
}
