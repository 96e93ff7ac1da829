// Proves the Modbus TCP driver against libmodbus's server, an independent implementation: it reads
// the shipped profiles' registers with the right scaling, bits, sentinels and word order, keeps
// polling after exception answers, reports a device that stops answering as offline after the
// configured failures, and online again when it answers.

#include "driver_harness.hpp"
#include "libmodbus_server.hpp"
#include "modbus/modbus_driver.hpp"
#include "modbus/modbus_error.hpp"
#include "modbus/profile.hpp"
#include "support.hpp"

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include <map>

using namespace firegate;
using namespace std::chrono_literals;
using test::recording_sink;
using test::run_until;
using test::shipped_profile;

namespace {

/// A driver on its own io_context polling a libmodbus server, with what it reported.
struct driver_fixture {
  test::libmodbus_server server;
  boost::asio::io_context io;
  recording_sink sink;
  config::bus_config bus;
  std::unique_ptr<bus_driver> driver;

  explicit driver_fixture(const std::string& profile = "SD-1");
  ~driver_fixture() {
    driver->stop();
    io.run_for(50ms);
  }
  bool run_until(const std::function<bool()>& condition) { return test::run_until(io, condition, 5s); }
  /// Writes through the running driver and waits for the outcome.
  write_outcome write(const std::string& target, double value, const std::string& device = "dev-1") {
    std::optional<write_outcome> outcome;
    driver->write({device, target, value}, [&](const write_outcome& o) { outcome = o; });
    REQUIRE(run_until([&] { return outcome.has_value(); }));
    return *outcome;
  }
  /// A copy: two calls in one expression must not see each other's snapshot go away.
  device_counters counters() {
    auto snapshot = driver->counters();
    REQUIRE(snapshot.size() == 1);
    return snapshot[0];
  }
};

config::bus_config make_bus(std::uint16_t port, const std::string& profile = "SD-1",
                            std::chrono::milliseconds poll = 50ms, std::chrono::milliseconds alarm = 50ms) {
  auto s = std::make_shared<modbus::modbus_tcp_settings>();
  s->host = "127.0.0.1";
  s->port = port;
  s->timeout = 200ms;
  s->poll_interval = poll;
  s->alarm_interval = alarm;
  s->offline_after = 2;
  s->devices.push_back({"dev-1", 1, shipped_profile(profile), poll, alarm, {}, {}});
  return {"bus-1", "modbus_tcp", s};
}

driver_fixture::driver_fixture(const std::string& profile)
    : bus(make_bus(server.port(), profile)), driver(create_driver(io.get_executor(), bus, sink)) {}

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

TEST_CASE("alarm points are read every alarm interval and every point every poll interval") {
  test::libmodbus_server server;
  boost::asio::io_context io;
  recording_sink sink;
  auto bus = make_bus(server.port(), "SD-1", 400ms, 100ms);
  auto driver = create_driver(io.get_executor(), bus, sink);
  driver->start();
  run_until(
      io, [] { return false; }, 1300ms);
  const auto counters = driver->counters();
  driver->stop();
  io.run_for(50ms);
  // SD-1: the alarm group is "state" with its fire rule's evidence, smoke and temperature (three
  // registers); a full poll reads all four in one request.
  const auto& sizes = sink.poll_sizes["dev-1"];
  const auto full = std::count(sizes.begin(), sizes.end(), 4u);
  const auto alarm_only = std::count(sizes.begin(), sizes.end(), 3u);
  INFO("full polls: " << full << ", alarm-only polls: " << alarm_only << ", all: " << sizes.size());
  CHECK(full + alarm_only == static_cast<std::ptrdiff_t>(sizes.size()));
  CHECK(full >= 3);  // at 0, 400, 800 and 1200 ms
  CHECK(full <= 4);
  CHECK(alarm_only >= 8);  // the three 100 ms slots between full polls
  CHECK(alarm_only <= 10);
  REQUIRE(counters.size() == 1);
  // The snapshot may catch one poll in flight: counted as sent, not yet reported.
  CHECK(counters[0].polls - sizes.size() <= 1);
  CHECK(counters[0].requests == counters[0].polls);  // one request a poll: coalesced
  CHECK(counters[0].responses - sizes.size() <= 1);
  CHECK(counters[0].online);
  CHECK(counters[0].last_good.has_value());
  CHECK(counters[0].address == "127.0.0.1:" + std::to_string(server.port()) + " unit 1");
}

TEST_CASE("counters tell timeouts from exceptions and keep response times") {
  driver_fixture f;
  f.driver->start();
  REQUIRE(f.run_until([&] { return f.sink.readings.size() >= 8; }));
  CHECK(f.counters().responses >= 2);
  CHECK(f.counters().max_response_time > 0us);
  CHECK(f.counters().max_response_time >= f.counters().last_response_time);
  CHECK(f.counters().total_response_time >= f.counters().max_response_time);
  CHECK(f.counters().timeouts == 0);
  f.server.set_failing(true);
  REQUIRE(f.run_until([&] { return f.counters().exceptions >= 2; }));
  CHECK(f.counters().last_error.find("exception 4") == 0);
  CHECK(f.counters().consecutive_failures >= 2);
  CHECK(f.counters().timeouts == 0);
  f.server.set_failing(false);
  f.server.set_silent(true);
  REQUIRE(f.run_until([&] { return f.counters().timeouts >= 1; }));
  CHECK_FALSE(f.counters().online);
  CHECK(f.counters().last_error == "no response before the timeout");
  CHECK(f.counters().crc_errors == 0);
}

TEST_CASE("writes: a command register and a setting read back") {
  driver_fixture f("EFD-4T");
  f.server.set_holding_register(0x0106, 1);  // mode: alarm
  f.driver->start();
  REQUIRE(f.run_until([&] { return !f.sink.readings.empty(); }));

  auto silence = f.write("command", 2);
  INFO(silence.detail);
  CHECK_FALSE(silence.error);
  CHECK_FALSE(silence.verified);  // a command register reads 0 once acted on: not read back
  CHECK(f.server.holding_register(0x0120) == 2);

  auto trip = f.write("mode", 2);
  CHECK_FALSE(trip.error);
  CHECK(trip.verified);
  CHECK(f.server.holding_register(0x0106) == 2);
  REQUIRE(f.run_until([&] { return f.sink.last("mode") == 2.0; }));  // polling goes on

  auto setting = f.write("leakage_alarm_setting", 500);
  CHECK_FALSE(setting.error);
  CHECK(f.server.holding_register(0x0100) == 500);
  CHECK(f.counters().writes == 3);
  CHECK(f.counters().write_failures == 0);
}

TEST_CASE("writes: bad requests are refused before anything is sent") {
  driver_fixture f("EFD-4T");
  f.driver->start();
  REQUIRE(f.run_until([&] { return !f.sink.readings.empty(); }));
  const auto requests = f.counters().requests;

  auto out_of_range = f.write("leakage_alarm_setting", 5000);
  CHECK(out_of_range.error == std::errc::invalid_argument);
  CHECK(out_of_range.detail.find("5000 is outside") == 0);
  auto unlabelled = f.write("mode", 7);
  CHECK(unlabelled.error == std::errc::invalid_argument);
  auto unknown = f.write("siren", 1);
  CHECK(unknown.error == std::errc::invalid_argument);
  CHECK(unknown.detail ==
        "profile EFD-4T has no writable \"siren\"; it has: command, leakage_alarm_setting, mode");
  auto nobody = f.write("command", 1, "dev-9");
  CHECK(nobody.detail == "no device \"dev-9\" on bus bus-1");
  CHECK(f.server.holding_register(0x0100) == 0);
  CHECK(f.counters().writes == 0);
  // Polls went on meanwhile; no write request reached the device.
  CHECK(f.counters().requests >= requests);
  CHECK(f.server.holding_register(0x0106) == 0);
}

TEST_CASE("writes: a device that echoes but does not take a setting fails the read-back") {
  driver_fixture f("EFD-4T");
  f.server.set_holding_register(0x0106, 1);
  f.server.set_read_only(0x0106);
  f.driver->start();
  REQUIRE(f.run_until([&] { return !f.sink.readings.empty(); }));
  auto trip = f.write("mode", 2);
  CHECK(trip.error == modbus::modbus_errc::readback_mismatch);
  CHECK_FALSE(trip.verified);
  CHECK(trip.detail.find("dev-1 mode=2 at 127.0.0.1:") == 0);
  CHECK(trip.detail.find("read-back failed") != std::string::npos);
  CHECK(f.counters().write_failures == 1);

  f.server.set_silent(true);
  auto silent = f.write("command", 1);
  CHECK(silent.error == modbus::modbus_errc::timeout);
}

TEST_CASE("writes still pending at stop are answered as cancelled") {
  driver_fixture f("EFD-4T");
  f.server.set_silent(true);
  f.driver->start();
  // By request: the first may be under way when the stop comes (and fail as its socket closes,
  // after the others are answered); the two behind it never started.
  std::map<int, std::error_code> outcomes;
  for (int i = 0; i < 3; ++i)
    f.driver->write({"dev-1", "command", 1}, [&, i](auto& o) { outcomes[i] = o.error; });
  f.io.run_for(20ms);
  f.driver->stop();
  f.io.run_for(100ms);
  REQUIRE(outcomes.size() == 3);
  CHECK(outcomes[1] == std::errc::operation_canceled);
  CHECK(outcomes[2] == std::errc::operation_canceled);
}
