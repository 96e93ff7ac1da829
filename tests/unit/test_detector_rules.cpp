// Proves the first rule: a detector's state 1 raises one fire alarm, 0 raises its recovery naming
// the alarm, and a device going offline and back is a fault and its recovery.

#include "rules/detector_rules.hpp"

#include <catch2/catch.hpp>

using namespace firegate;

namespace {

reading state(const std::string& device, double v, quality q = quality::good) {
  return {device, "state", v, "", q, clock::time_point(std::chrono::seconds(1000))};
}

detector_rules make_rules() {
  auto n = std::make_shared<int>(0);
  return detector_rules([n] { return "id-" + std::to_string(++*n); });
}

}  // namespace

TEST_CASE("state 1 raises one fire alarm and 0 its recovery") {
  auto rules = make_rules();
  CHECK(rules.on_readings(std::vector{state("d1", 0)}).empty());
  auto fire = rules.on_readings(std::vector{state("d1", 1)});
  REQUIRE(fire.size() == 1);
  CHECK(fire[0].kind == event_kind::fire_alarm);
  CHECK(fire[0].device == "d1");
  CHECK(fire[0].id == "id-1");
  CHECK(fire[0].value == 1);
  CHECK(rules.active_fires().at("d1") == "id-1");

  CHECK(rules.on_readings(std::vector{state("d1", 1)}).empty());  // still burning: no new alarm

  auto recovery = rules.on_readings(std::vector{state("d1", 0)});
  REQUIRE(recovery.size() == 1);
  CHECK(recovery[0].kind == event_kind::fire_recovery);
  CHECK(recovery[0].alarm_id == "id-1");
  CHECK(rules.active_fires().empty());
  CHECK(rules.on_readings(std::vector{state("d1", 0)}).empty());
}

TEST_CASE("devices are independent - other states and bad readings raise no fire") {
  auto rules = make_rules();
  CHECK(rules.on_readings(std::vector{state("d1", 2), state("d1", 3), state("d1", 4)}).empty());
  CHECK(rules.on_readings(std::vector{state("d2", 1, quality::bad)}).empty());
  reading smoke{"d1", "smoke", 1, "dB/m", quality::good, {}};
  CHECK(rules.on_readings(std::vector{smoke}).empty());
  auto two = rules.on_readings(std::vector{state("d1", 1), state("d2", 1)});
  REQUIRE(two.size() == 2);
  CHECK(two[0].device == "d1");
  CHECK(two[1].device == "d2");
}

TEST_CASE("offline is a fault - online again its recovery") {
  auto rules = make_rules();
  device_status down{"d1", false, std::make_error_code(std::errc::timed_out), "127.0.0.1:1502 unit 1", {}};
  auto fault = rules.on_device_status(down);
  REQUIRE(fault.size() == 1);
  CHECK(fault[0].kind == event_kind::device_offline);
  CHECK(fault[0].detail.find("127.0.0.1:1502 unit 1") != std::string::npos);
  CHECK(rules.on_device_status(down).empty());
  device_status up{"d1", true, {}, "127.0.0.1:1502 unit 1", {}};
  auto back = rules.on_device_status(up);
  REQUIRE(back.size() == 1);
  CHECK(back[0].kind == event_kind::device_online);
  CHECK(back[0].alarm_id == fault[0].id);
  CHECK(category_of(back[0].kind) == "recovery");
}
