// What firegate's events and readings become for a GB/T 26875.3 centre: component status bits,
// UITD status, analog types and factors, descriptions in GB 18030 cut at a character boundary.

#include "gb26875/gb18030.hpp"
#include "uplink/gb26875/gb26875_mapping.hpp"

#include <catch2/catch.hpp>

using namespace firegate;

namespace {

config::gateway_file gb_config() {
  config::gateway_file cfg;
  cfg.gateway.id = "gw-1";
  cfg.site.id = "site-1";
  cfg.gb26875 = config::gb26875_uplink_config{};
  cfg.gb26875->system_type = 1;
  cfg.gb26875->system_address = 2;
  config::device_config d;
  d.name = "smoke-201";
  d.bus = "b";
  d.location = "二楼 201 房";
  d.gb26875_address = 101;
  cfg.devices.push_back(d);
  d.name = "no-address";
  d.gb26875_address.reset();
  cfg.devices.push_back(d);
  return cfg;
}

event event_of(event_kind kind, const std::string& device, bool test = false, const std::string& rule = "") {
  event e;
  e.id = "e1";
  e.kind = kind;
  e.device = device;
  e.time = clock::now();
  e.test = test;
  e.rule = rule;
  return e;
}

std::int64_t status_word(const gb26875::app_data& d) {
  return std::get<std::int64_t>(d.objects.at(0).values.at(4));
}

}  // namespace

TEST_CASE("gb26875 mapping: GB 18030 descriptions are cut at a character boundary") {
  const std::string room = "二楼 201 房";
  const auto gb = gb26875::to_gb18030(room);
  CHECK(gb == std::string("\xB6\xFE\xC2\xA5\x20\x32\x30\x31\x20\xB7\xBF"));
  CHECK(gb26875::from_gb18030(gb) == room);
  // Twenty two-byte characters: fifteen fit 31 bytes, and no character is split.
  std::string long_text;
  for (int i = 0; i < 20; ++i) long_text += "房";
  const auto cut = gb26875::to_gb18030(long_text);
  CHECK(cut.size() == 30);
  CHECK(gb26875::from_gb18030(cut) == long_text.substr(0, 15 * 3));
  // Not UTF-8, and a control character on the way back: '?'.
  CHECK(gb26875::to_gb18030("a\xFF"
                            "b") == "a?b");
  CHECK(gb26875::from_gb18030("a\nb") == "a?b");
}

TEST_CASE("gb26875 mapping: events become component status with the standard's bits") {
  const gb26875_mapper mapper(gb_config());
  std::string error;
  const auto fire = mapper.event(event_of(event_kind::fire_alarm, "smoke-201"), {}, error);
  REQUIRE(fire);
  CHECK(fire->type == 2);
  CHECK(std::get<std::int64_t>(fire->objects[0].values[1]) == 2);    // system address
  CHECK(std::get<std::int64_t>(fire->objects[0].values[3]) == 101);  // component address
  CHECK(status_word(*fire) == (gb_status::normal | gb_status::fire));
  CHECK(std::get<std::string>(fire->objects[0].values[5]) == gb26875::to_gb18030("二楼 201 房"));
  CHECK(fire->objects[0].time.has_value());
  CHECK(status_word(*mapper.event(event_of(event_kind::fire_recovery, "smoke-201"), {}, error)) ==
        gb_status::normal);
  CHECK(status_word(*mapper.event(event_of(event_kind::supervisory_alarm, "smoke-201"), {}, error)) ==
        (gb_status::normal | gb_status::supervisory));
  CHECK(status_word(*mapper.event(event_of(event_kind::device_offline, "smoke-201"), {}, error)) ==
        (gb_status::normal | gb_status::fault));
  CHECK(status_word(*mapper.event(event_of(event_kind::device_fault, "smoke-201", false, "supply_low"), {},
                                  error)) == (gb_status::normal | gb_status::fault));
  CHECK(status_word(*mapper.event(event_of(event_kind::device_fault, "smoke-201", false, "battery_low"), {},
                                  error)) == (gb_status::normal | gb_status::power_fault));
  CHECK(status_word(*mapper.event(event_of(event_kind::device_shielded, "smoke-201"), {}, error)) ==
        (gb_status::normal | gb_status::shielded));
  // A test alarm: bit 0 clear (under test).
  CHECK(status_word(*mapper.event(event_of(event_kind::fire_alarm, "smoke-201", true), {}, error)) ==
        gb_status::fire);
  // The gateway's own storage: UITD status.
  const auto storage = mapper.event(event_of(event_kind::storage_fault, "gw-1"), {}, error);
  REQUIRE(storage);
  CHECK(storage->type == 21);
  CHECK(std::get<std::int64_t>(storage->objects[0].values[0]) == (gb_uitd::normal | gb_uitd::fault));
  // A bus down: the UITD's monitored-line fault (bit 6 of type 21: 0x45), and normal when it is back.
  const auto line = mapper.event(event_of(event_kind::bus_offline, "line-1"), {}, error);
  REQUIRE(line);
  CHECK(line->type == 21);
  CHECK(std::get<std::int64_t>(line->objects[0].values[0]) == 0x45);
  const auto back = mapper.event(event_of(event_kind::bus_online, "line-1"), {}, error);
  REQUIRE(back);
  CHECK(std::get<std::int64_t>(back->objects[0].values[0]) == 0x01);
  // The facility's system status: the bus-fault bit (bit 10) with the fault bit.
  CHECK(gb_status_bits(event_kind::bus_offline, "") == (0x0001 | 0x0004 | 0x0400));
  CHECK_FALSE(mapper.event(event_of(event_kind::linkage_overridden, "relay-1"), {}, error));
  // Nothing for an acknowledgement; an error for a device without an address.
  error.clear();
  CHECK_FALSE(mapper.event(event_of(event_kind::alarm_acknowledged, "smoke-201"), {}, error));
  CHECK(error.empty());
  CHECK_FALSE(mapper.event(event_of(event_kind::fire_alarm, "no-address"), {}, error));
  CHECK(error == "device \"no-address\" has no gb26875_address");
  // The centre's clock: an hour ahead of ours moves the time label by an hour.
  const auto now = mapper.event(event_of(event_kind::fire_alarm, "smoke-201"), {}, error);
  const auto ahead =
      mapper.event(event_of(event_kind::fire_alarm, "smoke-201"), std::chrono::hours(1), error);
  CHECK(*ahead->objects[0].time->to_time_point() - *now->objects[0].time->to_time_point() ==
        std::chrono::hours(1));
}

TEST_CASE("gb26875 mapping: readings with a unit the standard knows become analog values in frames of 63") {
  const gb26875_mapper mapper(gb_config());
  std::vector<reading> readings;
  const auto add = [&](const std::string& unit, double value, quality q = quality::good) {
    reading r;
    r.device = "smoke-201";
    r.point = "p" + std::to_string(readings.size());
    r.unit = unit;
    r.value = value;
    r.q = q;
    r.time = clock::now();
    readings.push_back(r);
  };
  add("°C", 65.3);
  add("mA", 350);
  add("%LEL", 12.5);
  add("V", 229.6);
  add("A", 5000);  // beyond int16 in 0.1 A: clamped
  add("dB/m", 0.1);
  add("°C", 20, quality::bad);
  const auto frames = mapper.analog(readings, {});
  REQUIRE(frames.size() == 1);
  const auto& objects = frames[0].objects;
  REQUIRE(objects.size() == 5);
  const auto analog = [&](std::size_t i) {
    return std::pair{std::get<std::int64_t>(objects[i].values[4]),
                     std::get<std::int64_t>(objects[i].values[5])};
  };
  CHECK(analog(0) == std::pair<std::int64_t, std::int64_t>{3, 653});
  CHECK(analog(1) == std::pair<std::int64_t, std::int64_t>{residual_current_analog_type, 350});
  CHECK(analog(2) == std::pair<std::int64_t, std::int64_t>{6, 125});
  CHECK(analog(3) == std::pair<std::int64_t, std::int64_t>{8, 2296});
  CHECK(analog(4) == std::pair<std::int64_t, std::int64_t>{9, 32767});
  readings.clear();
  for (int i = 0; i < 70; ++i) add("V", 230);
  const auto split = mapper.analog(readings, {});
  REQUIRE(split.size() == 2);
  CHECK(split[0].objects.size() == 63);
  CHECK(split[1].objects.size() == 7);
  for (const auto& d : split) CHECK(gb26875::encode(d).size() <= gb26875::max_data_length);
}

TEST_CASE("gb26875 mapping: component types come from the profile's annotations in the catalogue") {
  // An electrical-fire detector: residual current (17) by the device's type, its temperature channel
  // another kind of component (18), its alarm setting kept from the centre (0).
  auto cfg = gb_config();
  auto efd = std::make_shared<model_description>();
  efd->annotations["gb26875"] = {
      {"component_type", 17}, {"point.cable_temperature", 18}, {"point.setting", 0}};
  cfg.catalogue = device_catalogue({describe("smoke-201", efd, nullptr)});
  const gb26875_mapper mapper(cfg);
  CHECK(mapper.component("smoke-201", "residual_current")->component_type == 17);
  CHECK(mapper.component("smoke-201", "cable_temperature")->component_type == 18);
  CHECK(mapper.component("smoke-201", "")->component_type == 17);
  // A setting: no analog value for it, but an event that names it is still the device's.
  CHECK_FALSE(mapper.component("smoke-201", "setting", true).has_value());
  CHECK(mapper.component("smoke-201", "setting")->component_type == 17);
  CHECK_FALSE(mapper.component("no-address", "residual_current").has_value());

  std::vector<reading> readings;
  for (const auto* point : {"residual_current", "cable_temperature", "setting"}) {
    reading r;
    r.device = "smoke-201";
    r.point = point;
    r.unit = std::string(point) == "cable_temperature" ? "°C" : "mA";
    r.value = 300;
    r.time = clock::now();
    readings.push_back(r);
  }
  const auto frames = mapper.analog(readings, {});
  REQUIRE(frames.size() == 1);
  REQUIRE(frames[0].objects.size() == 2);  // the setting is not sent
  CHECK(std::get<std::int64_t>(frames[0].objects[0].values[2]) == 17);
  CHECK(std::get<std::int64_t>(frames[0].objects[1].values[2]) == 18);

  // A profile that says nothing: type 0 ("not given"), every point sent.
  cfg.catalogue = device_catalogue({describe("smoke-201", nullptr, nullptr)});
  CHECK(gb26875_mapper(cfg).component("smoke-201", "state")->component_type == 0);
}
