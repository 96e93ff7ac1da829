// The Modbus drivers against the fleet simulator (firegate-sim, a separate process) on real lines:
// RTU over a socat pty pair and RTU framing over TCP. The simulator's device logic stands in for
// real detectors: a leakage-current ramp raises EFD-4T's alarm bit, a probe open its fault bit,
// corrupted CRCs and slow answers are the line faults the counters must tell apart.

#include "driver_harness.hpp"
#include "modbus/modbus_driver.hpp"
#include "support.hpp"

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

using namespace firegate;
using namespace std::chrono_literals;
using test::recording_sink;
using test::shipped_profile;

namespace {

struct sim_device {
  std::string name;
  std::uint8_t unit;
  std::string profile;
};

std::vector<modbus::modbus_device_settings> devices_of(const std::vector<sim_device>& list,
                                                       std::chrono::milliseconds poll,
                                                       std::chrono::milliseconds alarm) {
  std::vector<modbus::modbus_device_settings> out;
  for (const auto& d : list) out.push_back({d.name, d.unit, shipped_profile(d.profile), poll, alarm, {}, {}});
  return out;
}

config::bus_config rtu_line(const std::string& tty, const std::vector<sim_device>& list,
                            std::chrono::milliseconds timeout = 200ms,
                            std::chrono::milliseconds turnaround = 100ms) {
  auto s = std::make_shared<modbus::modbus_rtu_settings>();
  s->line = {tty, 9600, 'N', 8, 1};
  s->timeout = timeout;
  s->poll_interval = 400ms;
  s->alarm_interval = 100ms;
  s->offline_after = 3;
  s->broadcast_turnaround = turnaround;
  s->devices = devices_of(list, 400ms, 100ms);
  return {"rs485-1", "modbus_rtu", s};
}

/// A driver on its own loop, with what it reported.
struct running_driver {
  boost::asio::io_context io;
  recording_sink sink;
  config::bus_config bus;
  std::unique_ptr<bus_driver> driver;

  explicit running_driver(config::bus_config b)
      : bus(std::move(b)), driver(create_driver(io.get_executor(), bus, sink)) {
    driver->start();
  }
  ~running_driver() {
    driver->stop();
    io.run_for(50ms);
  }
  bool run_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 5s) {
    return test::run_until(io, condition, timeout);
  }
  device_counters counters(const std::string& device) {
    for (auto& c : driver->counters()) {
      if (c.device == device) return c;
    }
    FAIL("no counters for " << device);
    return {};
  }
  std::optional<double> last(const std::string& device, const std::string& point) const {
    for (auto it = sink.readings.rbegin(); it != sink.readings.rend(); ++it) {
      if (it->device == device && it->point == point) return it->value;
    }
    return std::nullopt;
  }
  std::optional<reading> last_reading(const std::string& device, const std::string& point) const {
    for (auto it = sink.readings.rbegin(); it != sink.readings.rend(); ++it) {
      if (it->device == device && it->point == point) return *it;
    }
    return std::nullopt;
  }
  write_outcome write(const std::string& device, const std::string& target, double value) {
    std::optional<write_outcome> outcome;
    driver->write({device, target, value}, [&](const write_outcome& o) { outcome = o; });
    REQUIRE(run_until([&] { return outcome.has_value(); }));
    return *outcome;
  }
};

}  // namespace

TEST_CASE("RTU over a pty: EFD-4T, SD-1 and GD-1 from the fleet simulator on one line") {
  test::temp_dir dir;
  test::pty_pair line(dir);
  test::simulator sim(dir, {"--serial", line.b(), "--devices", "EFD-4T:1", "--devices", "SD-1:2", "--devices",
                            "GD-1-FLOAT-LE:3"});
  running_driver r(
      rtu_line(line.a(), {{"efd", 1, "EFD-4T"}, {"smoke", 2, "SD-1"}, {"gas", 3, "GD-1-FLOAT-LE"}}));
  REQUIRE(r.run_until([&] {
    return r.last("efd", "mode") && r.last("smoke", "supply_voltage") && r.last("gas", "gas_type");
  }));
  CHECK(r.last("efd", "residual_current").value() == Approx(35).margin(10));
  CHECK(r.last("efd", "leakage_alarm_setting") == 300.0);
  CHECK(r.last("efd", "leakage_alarm") == 0.0);
  CHECK(r.last("smoke", "state") == 0.0);
  CHECK(r.last("smoke", "supply_voltage").value() == Approx(24.0).margin(0.2));
  CHECK(r.last("gas", "concentration").value() == Approx(0.4).margin(0.5));

  // A leakage ramp: 35 mA to 500 mA in 1 s, with the detector's own alarm delay set to 0.
  sim.send("1 alarm_delay 0");
  sim.send("1 ramp residual_current 500 1");
  REQUIRE(r.run_until([&] { return r.last("efd", "leakage_alarm") == 1.0; }, 5s));
  CHECK(r.last("efd", "any_alarm") == 1.0);
  CHECK(r.last("efd", "residual_current").value() >= 300);

  // A probe open: the value is no value (bad quality) and the fault bit shows it.
  sim.send("1 cable_temperature_3 invalid");
  REQUIRE(r.run_until([&] { return r.last("efd", "temperature_probe_3_fault") == 1.0; }));
  REQUIRE(r.run_until([&] {
    auto t = r.last_reading("efd", "cable_temperature_3");
    return t && t->q == quality::bad;
  }));

  // Gas above the low alarm setting (20 %LEL): the detector's state follows.
  sim.send("3 concentration 30");
  REQUIRE(r.run_until([&] { return r.last("gas", "state") == 1.0; }));
  CHECK(r.last("gas", "concentration").value() == Approx(30).margin(0.5));
  CHECK(r.counters("efd").crc_errors == 0);
  CHECK(r.counters("efd").timeouts == 0);
  CHECK(r.sink.statuses.empty());
}

TEST_CASE("RTU on a pty: the simulator answers as a 9600-baud line would - line time and turnaround") {
  // A pty passes bytes at once; the simulator holds each answer until its last byte would have
  // arrived on the line. An SD-1's alarm-group read is an 8-byte request and an 11-byte answer (its
  // state with the fire rule's evidence, three registers), its full read 8 and 13 bytes (four); a
  // character is 11 bits, 1.146 ms at 9600 baud. From the master's write to the answer: the request
  // (9.17 ms), the 3.5-character silence that ends it (4.01 ms), the turnaround (40 ms here), the
  // answer (12.6 or 14.9 ms): 65.8 ms at least.
  test::temp_dir dir;
  test::pty_pair line(dir);
  test::simulator sim(dir, {"--serial", line.b(), "--devices", "SD-1:1", "--turnaround-ms", "40"});
  REQUIRE(sim.wait_for_log("turnaround_ms=40"));
  running_driver r(rtu_line(line.a(), {{"smoke-1", 1, "SD-1"}}));
  REQUIRE(r.run_until([&] { return r.counters("smoke-1").responses >= 6; }, 5s));
  const auto c = r.counters("smoke-1");
  CHECK(c.timeouts == 0);
  CHECK(c.total_response_time / c.responses >= 65ms);
  CHECK(c.last_response_time >= 65ms);
  CHECK(c.max_response_time < 190ms);  // paced, not stuck: the bus's timeout is 200 ms
}

TEST_CASE("RTU: corrupted CRCs are counted as CRC errors and cost only that device") {
  test::temp_dir dir;
  test::pty_pair line(dir);
  test::simulator sim(dir, {"--serial", line.b(), "--devices", "SD-1:1-2"});
  running_driver r(rtu_line(line.a(), {{"smoke-1", 1, "SD-1"}, {"smoke-2", 2, "SD-1"}}));
  REQUIRE(r.run_until(
      [&] { return r.sink.polls["smoke-1"].size() >= 2 && r.sink.polls["smoke-2"].size() >= 2; }));
  sim.send("2 corrupt 100");
  REQUIRE(sim.wait_for_log("change unit=2 corrupt=100"));
  REQUIRE(r.run_until([&] { return !r.sink.statuses.empty(); }));
  CHECK(r.sink.statuses[0].device == "smoke-2");
  CHECK(r.sink.statuses[0].error.message() == "CRC mismatch (check wiring, termination and baud rate)");
  const auto before = r.sink.polls["smoke-1"].size();
  r.run_until([] { return false; }, 600ms);
  CHECK(r.sink.polls["smoke-1"].size() >= before + 4);  // 100 ms alarm polls go on
  CHECK(r.counters("smoke-2").crc_errors >= 3);
  CHECK(r.counters("smoke-2").timeouts == 0);
  CHECK(r.counters("smoke-1").crc_errors == 0);
  CHECK(r.counters("smoke-1").online);
  sim.send("2 corrupt 0");
  REQUIRE(r.run_until([&] { return r.sink.statuses.size() >= 2; }, 10s));
  CHECK(r.sink.statuses[1].online);
}

TEST_CASE("slow answers: under the timeout they are slow, over it they are timeouts") {
  test::temp_dir dir;
  test::pty_pair line(dir);
  test::simulator sim(dir, {"--serial", line.b(), "--devices", "SD-1:1"});
  running_driver r(rtu_line(line.a(), {{"smoke-1", 1, "SD-1"}}, 300ms));
  REQUIRE(r.run_until([&] { return r.sink.polls["smoke-1"].size() >= 2; }));
  sim.send("1 delay_ms 150");
  REQUIRE(sim.wait_for_log("change unit=1 delay_ms=150"));
  REQUIRE(r.run_until([&] { return r.counters("smoke-1").last_response_time >= 150ms; }));
  CHECK(r.counters("smoke-1").timeouts == 0);
  sim.send("1 delay_ms 500");
  REQUIRE(r.run_until([&] { return r.counters("smoke-1").timeouts >= 1; }));
  CHECK(r.counters("smoke-1").last_error == "no response before the timeout");
}

TEST_CASE("RTU writes reach the device: SD-1 silence and reset - EFD-4T mode read back") {
  test::temp_dir dir;
  test::pty_pair line(dir);
  test::simulator sim(dir, {"--serial", line.b(), "--devices", "SD-1:1", "--devices", "EFD-4T:2"});
  running_driver r(rtu_line(line.a(), {{"smoke", 1, "SD-1"}, {"efd", 2, "EFD-4T"}}));
  REQUIRE(r.run_until([&] { return r.last("efd", "mode") == 1.0; }));
  sim.send("1 state 1");
  REQUIRE(r.run_until([&] { return r.last("smoke", "state") == 1.0; }));

  auto silence = r.write("smoke", "command", 1);
  CHECK_FALSE(silence.error);
  CHECK(sim.wait_for_log("command unit=1 silence"));
  auto reset = r.write("smoke", "command", 2);
  CHECK_FALSE(reset.error);
  CHECK(sim.wait_for_log("command unit=1 reset"));
  REQUIRE(r.run_until([&] { return r.last("smoke", "state") == 0.0; }));

  auto trip = r.write("efd", "mode", 2);
  INFO(trip.detail);
  CHECK_FALSE(trip.error);
  CHECK(trip.verified);
  REQUIRE(r.run_until([&] { return r.last("efd", "mode") == 2.0; }));
  // Outside the profile's 20-1000 mA: refused before anything is sent.
  CHECK(r.write("efd", "leakage_alarm_setting", 5).error == std::errc::invalid_argument);
}

TEST_CASE("RTU framing over TCP: a serial device server in front of the line") {
  test::temp_dir dir;
  test::simulator sim(dir, {"--framing", "rtu", "--devices", "SD-1:1-2"});
  auto s = std::make_shared<modbus::modbus_tcp_settings>();
  s->host = "127.0.0.1";
  s->port = sim.port();
  s->framing = modbus::tcp_framing::rtu;
  s->timeout = 200ms;
  s->devices = devices_of({{"smoke-1", 1, "SD-1"}, {"smoke-2", 2, "SD-1"}}, 200ms, 100ms);
  running_driver r({"gw-1", "modbus_tcp", s});
  REQUIRE(r.run_until([&] { return r.last("smoke-2", "supply_voltage").has_value(); }));
  sim.send("2 state 1");
  REQUIRE(r.run_until([&] { return r.last("smoke-2", "state") == 1.0; }));
  CHECK(r.last("smoke-1", "state") == 0.0);
  sim.send("1 corrupt 100");
  REQUIRE(r.run_until([&] { return r.counters("smoke-1").crc_errors >= 1; }));
  CHECK(r.counters("smoke-2").crc_errors == 0);
}

TEST_CASE("a device that refuses reads across reserved registers is read without gaps") {
  test::temp_dir dir;
  test::pty_pair line(dir);
  test::simulator sim(dir, {"--serial", line.b(), "--devices", "EFD-4T:1"});
  sim.send("1 strict 1");
  REQUIRE(sim.wait_for_log("change unit=1 strict=1"));
  running_driver r(rtu_line(line.a(), {{"efd", 1, "EFD-4T"}}));
  // The first full poll reads 0x0000-0x0011 across 0x000B-0x000F and gets exception 2; from then
  // on the device is read in gapless blocks and every point arrives.
  REQUIRE(r.run_until(
      [&] { return r.last("efd", "any_alarm").has_value() && r.last("efd", "mode").has_value(); }));
  CHECK(r.counters("efd").exceptions == 1);
  CHECK(r.last("efd", "residual_current").has_value());
  CHECK(r.sink.statuses.empty());  // one failure is not offline
}

TEST_CASE("a unit with another profile than configured: exception 2 named - and offline") {
  test::temp_dir dir;
  test::pty_pair line(dir);
  test::simulator sim(dir, {"--serial", line.b(), "--devices", "GD-1:1", "--devices", "SD-1:2"});
  // Unit 1 is a gas detector but configured as an SD-1: its fc 04 reads have no input registers.
  running_driver r(rtu_line(line.a(), {{"wrong", 1, "SD-1"}, {"smoke", 2, "SD-1"}}));
  REQUIRE(r.run_until([&] { return !r.sink.statuses.empty(); }));
  CHECK(r.sink.statuses[0].device == "wrong");
  CHECK(r.sink.statuses[0].error.message().find("exception 2") == 0);
  CHECK(r.counters("wrong").exceptions >= 3);
  CHECK(r.counters("wrong").timeouts == 0);
  CHECK(r.counters("smoke").online);
}

TEST_CASE("a broadcast reset reaches every detector on the line - and the line waits its turnaround") {
  test::temp_dir dir;
  test::pty_pair line(dir);
  test::simulator sim(dir, {"--serial", line.b(), "--devices", "SD-1:1-3"});
  running_driver r(rtu_line(
      line.a(), {{"smoke-1", 1, "SD-1"}, {"smoke-2", 2, "SD-1"}, {"smoke-3", 3, "SD-1"}}, 200ms, 300ms));
  sim.send("1 state 1");
  sim.send("3 state 1");
  REQUIRE(
      r.run_until([&] { return r.last("smoke-1", "state") == 1.0 && r.last("smoke-3", "state") == 1.0; }));

  const auto sent = std::chrono::steady_clock::now();
  auto reset = r.write("*", "command", 2);
  const auto took = std::chrono::steady_clock::now() - sent;
  INFO(reset.detail);
  CHECK_FALSE(reset.error);
  CHECK_FALSE(reset.verified);  // nobody answers a broadcast
  CHECK(reset.detail.find("no unit answers a broadcast") != std::string::npos);
  CHECK(took >= 300ms);  // the turnaround passed before the write was reported done
  CHECK(sim.wait_for_log("command unit=1 reset"));
  CHECK(sim.wait_for_log("command unit=2 reset"));
  CHECK(sim.wait_for_log("command unit=3 reset"));
  REQUIRE(
      r.run_until([&] { return r.last("smoke-1", "state") == 0.0 && r.last("smoke-3", "state") == 0.0; }));
  CHECK(r.sink.statuses.empty());  // polling went on without a timeout around it

  CHECK(r.write("*", "mode", 1).detail == "no device on bus rs485-1 has a writable \"mode\"");
}

TEST_CASE("Modbus TCP has no broadcast: the write says what to do instead") {
  test::temp_dir dir;
  test::simulator sim(dir, {"--devices", "SD-1:1"});
  auto s = std::make_shared<modbus::modbus_tcp_settings>();
  s->host = "127.0.0.1";
  s->port = sim.port();
  s->devices = devices_of({{"smoke-1", 1, "SD-1"}}, 200ms, 100ms);
  running_driver r({"tcp-1", "modbus_tcp", s});
  REQUIRE(r.run_until([&] { return r.last("smoke-1", "state").has_value(); }));
  auto reset = r.write("*", "command", 2);
  CHECK(reset.error == std::errc::operation_not_supported);
  CHECK(reset.detail.find("has no broadcast") != std::string::npos);
}

namespace {

config::bus_config pipelined_bus(std::uint16_t port, std::size_t in_flight, std::chrono::milliseconds timeout,
                                 const std::vector<sim_device>& list) {
  auto s = std::make_shared<modbus::modbus_tcp_settings>();
  s->host = "127.0.0.1";
  s->port = port;
  s->timeout = timeout;
  s->max_in_flight = in_flight;
  s->poll_interval = 100ms;
  s->alarm_interval = 100ms;
  s->devices = devices_of(list, 100ms, 100ms);
  return {"gw-1", "modbus_tcp", s};
}

/// How long until every device has been read once, on a gateway answering each after 200 ms.
std::chrono::milliseconds first_round(std::size_t in_flight) {
  test::temp_dir dir;
  test::simulator sim(dir, {"--concurrent", "--devices", "SD-1:1-4"});
  for (int unit = 1; unit <= 4; ++unit) sim.send(std::to_string(unit) + " delay_ms 200");
  REQUIRE(sim.wait_for_log("change unit=4 delay_ms=200"));
  const auto started = std::chrono::steady_clock::now();
  running_driver r(
      pipelined_bus(sim.port(), in_flight, 1000ms,
                    {{"d1", 1, "SD-1"}, {"d2", 2, "SD-1"}, {"d3", 3, "SD-1"}, {"d4", 4, "SD-1"}}));
  REQUIRE(r.run_until([&] { return r.sink.polls.size() == 4; }, 10s));
  for (const auto& c : r.driver->counters()) CHECK(c.timeouts == 0);
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
}

}  // namespace

TEST_CASE("pipelining: four slow devices behind a gateway are read at once - not one after another") {
  // With one request at a time the four 200 ms answers queue (over 800 ms); with four in flight
  // they overlap (the first polls are spread over the 100 ms alarm interval).
  const auto one_at_a_time = first_round(1);
  const auto pipelined = first_round(4);
  INFO("one at a time: " << one_at_a_time.count() << " ms, pipelined: " << pipelined.count() << " ms");
  CHECK(one_at_a_time >= 800ms);
  CHECK(pipelined < one_at_a_time - 300ms);
}

TEST_CASE("pipelining: a device that times out costs its own request - the connection and others go on") {
  test::temp_dir dir;
  test::simulator sim(dir, {"--concurrent", "--devices", "SD-1:1-2"});
  sim.send("1 delay_ms 400");
  REQUIRE(sim.wait_for_log("change unit=1 delay_ms=400"));
  running_driver r(pipelined_bus(sim.port(), 2, 250ms, {{"slow", 1, "SD-1"}, {"quick", 2, "SD-1"}}));
  REQUIRE(r.run_until([&] { return r.counters("slow").timeouts >= 2; }, 10s));
  CHECK(r.counters("quick").timeouts == 0);
  CHECK(r.counters("quick").connection_errors == 0);
  CHECK(r.counters("quick").responses >= 2);
  CHECK(r.counters("slow").connection_errors == 0);  // a late answer is dropped, the stream stays in step
  sim.send("1 delay_ms 0");
  REQUIRE(r.run_until(
      [&] { return r.counters("slow").consecutive_failures == 0 && r.counters("slow").online; }, 10s));
}

TEST_CASE(
    "RTU on an overloaded line: two detectors in fire at once are both read within a turn - the line's reads "
    "are alarm groups") {
  // Eight SD-1s on a 9600-baud line paced by the simulator, their alarm group due every 100 ms and
  // every point every 400 ms: nearly three times what the line carries (a turn of eight alarm reads
  // is about 290 ms). The bus reads each detector once a turn, for its alarm group (3 registers)
  // but for a full read (4) let through once every 10 s / (2 x 8) = 625 ms (poll_schedule.hpp);
  // reading every full poll as it fell due, as before, about half the reads were full ones.
  test::temp_dir dir;
  test::pty_pair line(dir);
  std::vector<std::string> args{"--serial", line.b()};
  std::vector<sim_device> detectors;
  for (std::uint8_t u = 1; u <= 8; ++u) detectors.push_back({"smoke-" + std::to_string(u), u, "SD-1"});
  args.insert(args.end(), {"--devices", "SD-1:1-8"});
  test::simulator sim(dir, args);
  running_driver r(rtu_line(line.a(), detectors));
  REQUIRE(r.run_until([&] { return r.sink.polls.size() == 8 && r.sink.polls["smoke-8"].size() >= 3; }, 10s));
  std::map<std::string, std::size_t> from;
  for (const auto& [device, sizes] : r.sink.poll_sizes) from[device] = sizes.size();
  const auto fired = std::chrono::steady_clock::now();
  sim.send("3 state 1");
  sim.send("6 state 1");
  std::map<std::string, std::chrono::steady_clock::duration> seen;
  const auto in_fire = [&](const std::string& device) {
    return std::any_of(r.sink.readings.begin(), r.sink.readings.end(), [&](const reading& x) {
      return x.device == device && x.point == "state" && x.value == 1.0;
    });
  };
  REQUIRE(r.run_until(
      [&] {
        for (const auto* d : {"smoke-3", "smoke-6"})
          if (!seen.contains(d) && in_fire(d)) seen[d] = std::chrono::steady_clock::now() - fired;
        return seen.size() == 2;
      },
      10s));
  // Each within a turn of the line and the exchange that read it, with room for a loaded machine.
  for (const auto& [device, after] : seen) {
    INFO(device << " read in fire " << after / 1ms << " ms after the change");
    CHECK(after < 1s);
  }
  // Go on for a second more, then count the reads since the fires by kind.
  const auto until = std::chrono::steady_clock::now() + 1s;
  r.run_until([&] { return std::chrono::steady_clock::now() >= until; }, 2s);
  std::size_t reads = 0, full = 0;
  for (const auto& [device, sizes] : r.sink.poll_sizes) {
    for (auto i = from[device]; i < sizes.size(); ++i) {
      ++reads;
      full += sizes[i] == 4 ? 1 : 0;
    }
  }
  const auto span = std::chrono::steady_clock::now() - fired;
  INFO(reads << " reads in " << span / 1ms << " ms, " << full << " of them full");
  CHECK(reads >= 8);  // every detector at least once
  // One let through in 625 ms: a read under way as the count began may be one of them.
  CHECK(static_cast<long>(full) <= (span + 100ms) / 625ms + 1);
}
