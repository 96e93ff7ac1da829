// Bus time on an RS-485 line (drivers/modbus/bus_time.hpp): what each exchange costs the line, what a
// bus's schedules ask of it, and the warning `firegated --check-config` gives when they cannot fit.

#include "config/config_loader.hpp"
#include "driver.hpp"
#include "driver_harness.hpp"
#include "modbus/bus_time.hpp"
#include "modbus/modbus_driver.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

using namespace firegate;
using namespace firegate::modbus;
using namespace std::chrono_literals;

namespace {

/// A 9600-baud line of 32 SD-1s (units 1-32) at these intervals, 8E1 (11-bit characters).
modbus_rtu_settings sd1_line(std::chrono::milliseconds alarm, std::chrono::milliseconds poll) {
  modbus_rtu_settings s;
  s.line = {"/dev/ttyUSB0", 9600, 'E', 8, 1};
  s.alarm_interval = alarm;
  s.poll_interval = poll;
  s.table_path = "buses[0]";
  s.table_line = 7;
  for (int unit = 1; unit <= 32; ++unit) {
    s.devices.push_back({"smoke-" + std::to_string(unit),
                         static_cast<std::uint8_t>(unit),
                         test::shipped_profile("SD-1"),
                         poll,
                         alarm,
                         {},
                         {}});
  }
  return s;
}

}  // namespace

// By hand, 9600 baud, 11-bit characters (1.1458 ms each), the 3.5-character silence 4,011 µs (as
// the codec rounds it), 5 ms turnaround:
//   SD-1 alarm group, fc 04 of 3 registers (state and the fire rule's evidence): request 8 bytes,
//     answer 5 + 6 = 11; 19 characters = 21,771 µs, + 2 x 4,011 + 5,000 = 34,793 µs.
//   SD-1 full poll, fc 04 of 4 registers: 8 + 13 = 21 characters = 24,063 µs (24,062.5 rounded),
//     + 8,022 + 5,000 = 37,085 µs.
TEST_CASE("bus time: an SD-1's exchanges on a 9600-baud line, from the requests the driver sends") {
  const auto t = timing_of({"/dev/ttyUSB0", 9600, 'E', 8, 1});
  CHECK(t.bits_per_char == 11);
  CHECK(timing_of({"/dev/ttyUSB0", 9600, 'N', 8, 1}).bits_per_char == 10);
  CHECK(timing_of({"/dev/ttyUSB0", 9600, 'N', 8, 2}).bits_per_char == 11);
  const auto sd1 = test::shipped_profile("SD-1");
  REQUIRE(sd1->alarm_blocks.size() == 1);
  REQUIRE(sd1->blocks.size() == 1);
  CHECK(rtu_request_bytes(sd1->alarm_blocks[0].request) == 8);
  CHECK(rtu_answer_bytes(sd1->alarm_blocks[0].request) == 11);
  CHECK(rtu_answer_bytes(sd1->blocks[0].request) == 13);
  CHECK(exchange_time(sd1->alarm_blocks, t) == 34793us);
  CHECK(exchange_time(sd1->blocks, t) == 37085us);
  // A bit read's answer carries a byte for every 8 bits: 10 coils are 2 bytes.
  CHECK(rtu_answer_bytes({function_code::read_coils, 0, 10}) == 7);
}

TEST_CASE("bus time: 32 SD-1s at 9600 baud - the shipped schedules are warned about, a sized one is not") {
  // The shipped defaults, alarm group every 500 ms and every point every 1000 ms: a second of each
  // device is one full poll and one alarm poll, 37,085 + 34,793 = 71,878 µs; 32 of them are
  // 2.300 s of line time a second: 230 %.
  const auto shipped = sd1_line(500ms, 1000ms);
  const auto t = timing_of(shipped.line);
  CHECK(bus_load(shipped.devices, t) == Approx(32 * 71878 / 1e6).epsilon(1e-6));
  auto warnings = shipped.warnings();
  REQUIRE(warnings.size() == 1);
  const auto& w = warnings[0];
  INFO(w.message);
  CHECK(w.path == "buses[0]");
  CHECK(w.line == 7);
  CHECK(
      w.message.starts_with("the schedules need 230 % of the line's time (32 devices, 64.0 requests a "
                            "second at 9600 baud, 11-bit characters, 5 ms device turnaround assumed)"));
  // Every point every 10 s and the alarm group every 1250 ms is the shortest alarm interval that fits
  // (below); 57600 baud fits as it is (38400: 91 %); three lines of 11 detectors.
  CHECK(w.message.find("raise alarm_interval_ms to 1250 and poll_interval_ms to 10000, raise baud to 57600 "
                       "if every device on the line allows it, or split the bus into 3 lines") !=
        std::string::npos);

  // Alarm group every 250 ms, every point every 2 s: 37,085 + 7 x 34,793 = 280,636 µs in 2 s, 14.03 %
  // a detector, 449 % in all. 449 / 90 rounds up to 5 lines, but whole detectors do not divide so: 6
  // fit a line (84.2 %), 7 do not (98.2 %), so 32 need 6 lines.
  const auto fast = sd1_line(250ms, 2000ms);
  CHECK(bus_load(fast.devices, t) == Approx(32 * 280636 / 2e6).epsilon(1e-6));
  const auto fast_text = fast.warnings().at(0).message;
  INFO(fast_text);
  CHECK(fast_text.find("or split the bus into 6 lines") != std::string::npos);

  // Sized: every point every 10 s, the alarm group every 1250 ms, so ceil(10000 / 1250) - 1 = 7
  // alarm polls between full polls: 37,085 + 7 x 34,793 = 280,636 µs in 10 s, x 32 = 89.8 %.
  const auto sized = sd1_line(1250ms, 10000ms);
  CHECK(bus_load(sized.devices, t) == Approx(32 * 280636 / 1e7).epsilon(1e-6));
  CHECK(sized.warnings().empty());
  // 50 ms less and there are 8 alarm polls: 37,085 + 8 x 34,793 = 315,429 µs, x 32 = 100.9 %.
  const auto tight = sd1_line(1200ms, 10000ms);
  CHECK(bus_load(tight.devices, t) == Approx(32 * 315429 / 1e7).epsilon(1e-6));
  CHECK(tight.warnings().size() == 1);

  // At 1200 baud and every point every 50 ms not even a line a detector would do (167 times the
  // line): the fix is the intervals. There an alarm-group read is 19 characters of 11 bits, 174.2 ms,
  // + 2 x 32.1 + 5 = 243.4 ms, and a full poll 261.7 ms: 32 full polls every 10 s are 83.7 % of the
  // line, and one alarm poll between them would add 77.9 %.
  auto slow = sd1_line(50ms, 50ms);
  slow.line.baud = 1200;
  const auto text = slow.warnings().at(0).message;
  INFO(text);
  CHECK(text.ends_with(
      "do not fit: raise alarm_interval_ms to 10000 and poll_interval_ms to 10000 (docs/rs485.md)"));
  CHECK(text.find("split the bus") == std::string::npos);
}

TEST_CASE("bus time: --check-config's warning names the bus's table - and leaves the file valid") {
  // The example's RS-485 line at 1200 baud: an EFD-4T's full poll alone is over a second of it.
  std::ifstream in(test::source_dir() + "/config/firegate.toml");
  std::stringstream text;
  text << in.rdbuf();
  auto edited = text.str();
  const auto at = edited.find("baud = 9600 ");
  REQUIRE(at != std::string::npos);
  edited.replace(at, 12, "baud = 1200 ");
  auto r = config::load_config_text(edited, test::source_dir() + "/config/firegate.toml", driver_parsers());
  INFO(r.error_text());
  REQUIRE(r.config);
  const auto warnings = config::config_warnings(*r.config);
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].path == "buses[1]");
  const auto bus_header = edited.rfind("[[buses]]", edited.find("name = \"rs485-1\""));
  CHECK(warnings[0].line ==
        std::count(edited.begin(), edited.begin() + static_cast<long>(bus_header), '\n') + 1);
  CHECK(warnings[0].message.find("at 1200 baud") != std::string::npos);
  // The shipped example itself fits its line.
  auto shipped = config::load_config_file(test::source_dir() + "/config/firegate.toml", driver_parsers());
  REQUIRE(shipped.config);
  CHECK(config::config_warnings(*shipped.config).empty());
}
