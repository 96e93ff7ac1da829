// An event as the outbox keeps it (domain/event_record.hpp) and as the uplinks read it back
// (uplink/stored_event.hpp): a record gives back the event that was written, every field; a
// firegate.event/1 message an older firegated queued gives back the facts it carries, so that the
// message written again from them is the message it was.

#include "domain/event_record.hpp"
#include "domain/time_text.hpp"
#include "uplink/mqtt/payloads.hpp"
#include "uplink/stored_event.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>

using namespace firegate;

namespace {

/// Every field of an event set, none to its default.
event full_event() {
  event e;
  e.id = "0b5e4d8c-2f7a-4c1e-9d3b-6a2f1e8c7d90";
  e.seq = 4711;
  e.kind = event_kind::fire_alarm;
  e.device = "efd-1";
  e.point = "residual_current";
  e.value = 523.5;
  e.unit = "mA";
  e.time = clock::time_point(std::chrono::nanoseconds(1795505451505123456));
  e.alarm_id = "a-1";
  e.detail = "leakage 523.5 mA over 500 mA \"kitchen\"\n";
  e.rule = "leakage";
  e.threshold = 500;
  e.device_code = 201;
  e.test = true;
  e.first_time = e.time - std::chrono::minutes(3);
  e.verdict = "real";
  e.actor = "operator 7";
  e.repeat = 2;
  e.until = e.time + std::chrono::hours(2);
  e.false_alarms_today = 3;
  e.bus = bus_info{"/dev/ttyUSB0", "no answer", {"efd-1", "smoke-2"}};
  e.value_label = "alarm";
  e.evidence = {{"residual_current", 523.5, "mA", ""}, {"state", 1, "", "fire"}};
  e.recovered = true;
  e.configuration = config_change_info{std::string(64, 'a'), std::string(64, 'b'), "devices +smoke-9"};
  e.clock_synchronised = false;
  return e;
}

void check_same(const event& a, const event& b) {
  CHECK(a.id == b.id);
  CHECK(a.seq == b.seq);
  CHECK(a.kind == b.kind);
  CHECK(a.device == b.device);
  CHECK(a.point == b.point);
  CHECK(a.unit == b.unit);
  CHECK(a.time == b.time);
  CHECK(a.alarm_id == b.alarm_id);
  CHECK(a.detail == b.detail);
  CHECK(a.rule == b.rule);
  CHECK(a.threshold == b.threshold);
  CHECK(a.device_code == b.device_code);
  CHECK(a.test == b.test);
  CHECK(a.first_time == b.first_time);
  CHECK(a.verdict == b.verdict);
  CHECK(a.actor == b.actor);
  CHECK(a.repeat == b.repeat);
  CHECK(a.until == b.until);
  CHECK(a.false_alarms_today == b.false_alarms_today);
  REQUIRE(a.bus.has_value() == b.bus.has_value());
  if (a.bus) {
    CHECK(a.bus->address == b.bus->address);
    CHECK(a.bus->failed == b.bus->failed);
    CHECK(a.bus->devices == b.bus->devices);
  }
  CHECK(a.value_label == b.value_label);
  REQUIRE(a.evidence.size() == b.evidence.size());
  for (std::size_t i = 0; i < a.evidence.size(); ++i) {
    CHECK(a.evidence[i].point == b.evidence[i].point);
    CHECK(a.evidence[i].value == b.evidence[i].value);
    CHECK(a.evidence[i].unit == b.evidence[i].unit);
    CHECK(a.evidence[i].label == b.evidence[i].label);
  }
  CHECK(a.recovered == b.recovered);
  CHECK(a.clock_synchronised == b.clock_synchronised);
  REQUIRE(a.configuration.has_value() == b.configuration.has_value());
  if (a.configuration) {
    CHECK(a.configuration->revision == b.configuration->revision);
    CHECK(a.configuration->previous == b.configuration->previous);
    CHECK(a.configuration->diff == b.configuration->diff);
  }
}

config::gateway_file site() {
  config::gateway_file cfg;
  cfg.gateway.id = "gw-1";
  cfg.site.id = "site-1";
  cfg.site.name = "Lucky Noodles";
  config::device_config d;
  d.name = "efd-1";
  d.bus = "line-1";
  d.location = "kitchen";
  cfg.devices.push_back(d);
  return cfg;
}

}  // namespace

TEST_CASE("event records: a record read back is the event written - every field, to the nanosecond") {
  const auto e = full_event();
  const auto record = to_record(e);
  CHECK(nlohmann::json::parse(record)["record"] == "firegate.event-record/1");
  const auto back = parse_record(record);
  REQUIRE(back);
  check_same(*back, e);
  CHECK(back->value == e.value);
  // An event with nothing optional set gives back nothing set.
  event bare;
  bare.id = "b";
  bare.device = "gw-1";
  bare.kind = event_kind::storage_fault;
  const auto bare_back = parse_record(to_record(bare));
  REQUIRE(bare_back);
  check_same(*bare_back, bare);
}

TEST_CASE("event records: a value that is not a number survives - damaged or foreign text is not a record") {
  auto e = full_event();
  e.value = std::nan("");
  e.threshold = INFINITY;
  const auto back = parse_record(to_record(e));
  REQUIRE(back);
  CHECK(std::isnan(back->value));
  CHECK(std::isnan(*back->threshold));
  // A field added by a later firegate is ignored; a wrong type, a missing field, or another schema is
  // refused.
  auto j = nlohmann::json::parse(to_record(full_event()));
  j["added_later"] = {1, 2};
  CHECK(parse_record(j.dump()));
  for (const char* field : {"id", "kind", "device", "time"}) {
    auto broken = nlohmann::json::parse(to_record(full_event()));
    broken.erase(field);
    CHECK_FALSE(parse_record(broken.dump()));
  }
  auto wrong = nlohmann::json::parse(to_record(full_event()));
  wrong["repeat"] = "twice";
  CHECK_FALSE(parse_record(wrong.dump()));
  wrong = nlohmann::json::parse(to_record(full_event()));
  wrong["kind"] = "meteor_strike";
  CHECK_FALSE(parse_record(wrong.dump()));
  CHECK_FALSE(parse_record(to_record(full_event()).substr(0, 40)));
  CHECK_FALSE(parse_record("alarm-1"));
  // Found by fuzz_event_record: a "record" or "schema" that is not a string is refused, not thrown.
  CHECK_FALSE(stored_event(R"({"record": {"name": "efd-1"}})"));
  CHECK_FALSE(stored_event(R"({"schema": 1, "id": "e"})"));
  CHECK_FALSE(stored_event(R"({"schema":"firegate.telemetry/2","polls":[]})"));
}

TEST_CASE("event records: text that is not UTF-8 is replaced, and the event kept") {
  auto e = full_event();
  e.detail = "no answer from \xFF\xFE unit 3";
  const auto back = parse_record(to_record(e));
  REQUIRE(back);
  CHECK(back->detail == "no answer from \xEF\xBF\xBD\xEF\xBF\xBD unit 3");
  const auto cfg = site();
  CHECK(nlohmann::json::parse(event_json(e, cfg, nullptr))["detail"] == back->detail);
}

TEST_CASE("event records: the platform's message is written from the record as it was from the event") {
  const auto cfg = site();
  const auto e = full_event();
  const auto from_record = stored_event(to_record(e));
  REQUIRE(from_record);
  CHECK(event_json(*from_record, cfg, &cfg.devices.front()) == event_json(e, cfg, &cfg.devices.front()));
  CHECK(nlohmann::json::parse(event_json(*from_record, cfg, nullptr))["recovered"] == true);
}

TEST_CASE("event records: a message an older firegated queued is read back into the same message") {
  const auto cfg = site();
  // As a firegated before records stored it (its outbox payload), written out by hand.
  const std::string queued = R"msg({"schema":"firegate.event/1","id":"e-9","seq":12,"gateway":"gw-1",
    "type":"fire_alarm","category":"fire","severity":"critical","time":"2026-11-24T14:03:05.123+08:00",
    "summary":"Fire at Lucky Noodles: efd-1 (kitchen)","detail":"leakage over its setting",
    "site":{"id":"site-1"},"contacts":{},"device":{"name":"efd-1","location":"kitchen"},"test":false,
    "state":"active","confirmation":"unconfirmed","first_time":"2026-11-24T14:03:05.123+08:00",
    "last_change":"2026-11-24T14:03:05.123+08:00","point":"residual_current","value":523.5,"unit":"mA",
    "evidence":[{"name":"residual_current","value":523.5,"unit":"mA"},{"name":"state","value":1,"unit":"","label":"fire"}],
    "rule":"leakage","threshold":500,"device_code":201,"recovered":true})msg";
  const auto e = stored_event(queued);
  REQUIRE(e);
  CHECK(e->id == "e-9");
  CHECK(e->seq == 12);
  CHECK(e->kind == event_kind::fire_alarm);
  CHECK(e->device == "efd-1");
  CHECK(e->time == *parse_iso8601("2026-11-24T06:03:05.123Z"));
  CHECK_FALSE(e->first_time);  // the alarm's own time: none of its own
  CHECK(e->verdict.empty());
  CHECK(e->point == "residual_current");
  CHECK(e->value == 523.5);
  CHECK(e->threshold == 500.0);
  CHECK(e->device_code == 201);
  REQUIRE(e->evidence.size() == 2);
  CHECK(e->evidence[1].label == "fire");
  CHECK(e->recovered);
  // Written again from what was read: the facts the first message carried, unchanged.
  const auto again = nlohmann::json::parse(event_json(*e, cfg, &cfg.devices.front()));
  const auto first = nlohmann::json::parse(queued);
  for (const char* key : {"id", "seq", "type", "detail", "state", "confirmation", "point", "value", "unit",
                          "evidence", "rule", "threshold", "device_code", "recovered", "test"}) {
    INFO(key);
    CHECK(again.at(key) == first.at(key));
  }
  for (const char* key : {"time", "first_time"}) {  // the same instant, written in the box's own zone
    INFO(key);
    CHECK(parse_iso8601(again.at(key).get<std::string>()) == parse_iso8601(first.at(key).get<std::string>()));
  }
  // Written by a full event, read back, written again: the same bytes.
  const auto message = event_json(full_event(), cfg, &cfg.devices.front());
  const auto read_back = stored_event(message);
  REQUIRE(read_back);
  CHECK(event_json(*read_back, cfg, &cfg.devices.front()) ==
        event_json(full_event(), cfg, &cfg.devices.front()));
}
