// The alarm engine: profile rules turned into events, one device's rules independent of another's,
// each alarm with its recovery naming it, thresholds and rule names carried for the control room,
// device reachability as a fault, a reload keeping what did not change.

#include "rules/alarm_engine.hpp"

#include <catch2/catch.hpp>

using namespace firegate;
using namespace firegate::rules;
using namespace std::chrono_literals;

namespace {

alarm_rule equals_rule(const std::string& name, double v, alarm_category c) {
  alarm_rule r;
  r.name = name;
  r.point = "state";
  r.category = c;
  r.text = name == "fire" ? "detector reports fire" : "detector reports a fault";
  r.condition.kind = condition_kind::equals;
  r.condition.values = {v};
  return r;
}

alarm_rule leakage_rule() {
  alarm_rule r;
  r.name = "leakage";
  r.point = "residual_current";
  r.category = alarm_category::fire;
  r.text = "residual current over its alarm setting";
  r.condition.kind = condition_kind::high;
  r.condition.set = 300;
  r.condition.clear = 270;
  r.condition.samples = 2;
  return r;
}

std::vector<alarm_engine::device_rules> sd1s(std::initializer_list<const char*> names) {
  std::vector<alarm_engine::device_rules> out;
  for (const auto* n : names) {
    out.push_back(
        {n, {equals_rule("fire", 1, alarm_category::fire), equals_rule("fault", 2, alarm_category::fault)}});
  }
  return out;
}

alarm_engine make_engine(std::vector<alarm_engine::device_rules> devices) {
  auto n = std::make_shared<int>(0);
  return alarm_engine(std::move(devices), [n] { return "id-" + std::to_string(++*n); });
}

reading state(const std::string& device, double v, quality q = quality::good) {
  return {device, "state", v, "", q, clock::time_point(std::chrono::seconds(1'790'000'000))};
}

const auto t0 = mono::time_point(100s);

}  // namespace

TEST_CASE("engine: state 1 raises one fire alarm - 0 its recovery naming it") {
  auto engine = make_engine(sd1s({"d1"}));
  CHECK(engine.on_readings(std::vector{state("d1", 0)}, t0).empty());
  auto fire = engine.on_readings(std::vector{state("d1", 1)}, t0 + 1s);
  REQUIRE(fire.size() == 1);
  CHECK(fire[0].kind == event_kind::fire_alarm);
  CHECK(fire[0].device == "d1");
  CHECK(fire[0].id == "id-1");
  CHECK(fire[0].value == 1);
  CHECK(fire[0].rule == "fire");
  CHECK(fire[0].detail == "detector reports fire");
  CHECK(fire[0].time == state("d1", 1).time);  // the reading's wall-clock time
  CHECK(engine.active_fires() == 1);
  CHECK(engine.on_readings(std::vector{state("d1", 1)}, t0 + 2s).empty());  // still burning: no new alarm
  auto recovery = engine.on_readings(std::vector{state("d1", 0)}, t0 + 3s);
  REQUIRE(recovery.size() == 1);
  CHECK(recovery[0].kind == event_kind::fire_recovery);
  CHECK(recovery[0].alarm_id == "id-1");
  CHECK(recovery[0].detail == "back to normal: detector reports fire");
  CHECK(engine.active_fires() == 0);
}

TEST_CASE("engine: devices are independent - a fault rule is a device fault - bad readings decide nothing") {
  auto engine = make_engine(sd1s({"d1", "d2"}));
  auto fault = engine.on_readings(std::vector{state("d1", 2)}, t0);
  REQUIRE(fault.size() == 1);
  CHECK(fault[0].kind == event_kind::device_fault);
  CHECK(category_of(fault[0].kind) == "fault");
  CHECK_FALSE(on_alarm_lane(fault[0].kind));
  CHECK(engine.on_readings(std::vector{state("d2", 1, quality::bad)}, t0).empty());
  reading smoke{"d1", "smoke", 1, "dB/m", quality::good, {}};
  CHECK(engine.on_readings(std::vector{smoke}, t0).empty());
  CHECK(engine.on_readings(std::vector{state("unknown", 1)}, t0).empty());
  auto two = engine.on_readings(std::vector{state("d1", 1), state("d2", 1)}, t0 + 1s);
  REQUIRE(two.size() == 3);  // d1: the fault ends and the fire begins; d2: fire
  CHECK(two[0].kind == event_kind::fire_alarm);
  CHECK(two[1].kind == event_kind::device_fault_recovery);
  CHECK(two[1].alarm_id == fault[0].id);
  CHECK(two[2].device == "d2");
}

TEST_CASE("engine: a threshold rule carries its setting - debounced by samples - clears with hysteresis") {
  auto engine = make_engine({{"efd-1", {leakage_rule()}}});
  const auto ma = [](double v) {
    return reading{"efd-1", "residual_current", v, "mA", quality::good, clock::time_point(1'790'000'000s)};
  };
  CHECK(engine.on_readings(std::vector{ma(320)}, t0).empty());  // one sample of two
  auto alarm = engine.on_readings(std::vector{ma(330)}, t0 + 1s);
  REQUIRE(alarm.size() == 1);
  CHECK(alarm[0].kind == event_kind::fire_alarm);
  CHECK(alarm[0].threshold == 300);
  CHECK(alarm[0].value == 330);
  CHECK(alarm[0].unit == "mA");
  CHECK(alarm[0].detail == "residual current over its alarm setting: 330 mA (setting 300 mA)");
  CHECK(engine.on_readings(std::vector{ma(280)}, t0 + 2s).empty());  // inside the hysteresis
  auto clear = engine.on_readings(std::vector{ma(270)}, t0 + 3s);
  REQUIRE(clear.size() == 1);
  CHECK(clear[0].kind == event_kind::fire_recovery);
}

TEST_CASE("engine: stale data and time debounces are decided on ticks - a disabled rule never fires") {
  alarm_rule stale;
  stale.name = "silent";
  stale.point = "state";
  stale.category = alarm_category::fault;
  stale.condition.kind = condition_kind::stale;
  stale.condition.stale_after = 30s;
  auto off = equals_rule("fire", 1, alarm_category::fire);
  off.enabled = false;
  auto engine = make_engine({{"d1", {stale, off}}});
  const auto wall = clock::time_point(1'790'000'000s);
  CHECK(engine.on_readings(std::vector{state("d1", 1)}, t0).empty());  // fire disabled
  CHECK(engine.on_tick(t0 + 29s, wall).empty());
  auto silent = engine.on_tick(t0 + 30s, wall);
  REQUIRE(silent.size() == 1);
  CHECK(silent[0].kind == event_kind::device_fault);
  CHECK(silent[0].rule == "silent");
  CHECK(silent[0].time == wall);
}

TEST_CASE(
    "engine: an alarm carries its rule's evidence from the poll that decided it - also when a delay "
    "completes on a tick - and its escalation carries the latest") {
  auto fire = equals_rule("fire", 1, alarm_category::fire);
  fire.evidence = {"smoke", "temperature"};
  fire.condition.delay = 2s;
  auto engine = make_engine({{"d1", {fire}}});
  const auto wall = clock::time_point(1'790'000'000s);
  const auto poll = [&](double st, double smoke, double temp, quality smoke_q = quality::good) {
    return std::vector{state("d1", st), reading{"d1", "smoke", smoke, "dB/m", smoke_q, wall},
                       reading{"d1", "temperature", temp, "°C", quality::good, wall}};
  };
  CHECK(engine.on_readings(poll(1, 2.5, 41.5), t0).empty());  // the delay runs
  auto raised = engine.on_tick(t0 + 2s, wall);
  REQUIRE(raised.size() == 1);
  REQUIRE(raised[0].evidence.size() == 2);
  CHECK(raised[0].evidence[0].point == "smoke");
  CHECK(raised[0].evidence[0].value == 2.5);
  CHECK(raised[0].evidence[0].unit == "dB/m");
  CHECK(raised[0].evidence[1].point == "temperature");
  CHECK(raised[0].evidence[1].value == 41.5);
  // A reading of bad quality is no evidence; the escalation carries what the last poll read.
  CHECK(engine.on_readings(poll(1, 0, 44, quality::bad), t0 + 3s).empty());
  auto again = engine.on_tick(t0 + 2s + 301s, wall);
  REQUIRE(again.size() == 1);
  CHECK(again[0].kind == event_kind::alarm_escalation);
  REQUIRE(again[0].evidence.size() == 1);
  CHECK(again[0].evidence[0].point == "temperature");
  CHECK(again[0].evidence[0].value == 44);
}

TEST_CASE("engine: devices of one profile share its rule list - a reload lets go of the old list") {
  // A site of 1,000 detectors keeps one copy of its profile's rules, not one a device: the engine
  // holds the configuration's list and, at a reload, the new list, even for rules whose state it keeps.
  const auto list = std::make_shared<const std::vector<alarm_rule>>(std::vector{
      equals_rule("fire", 1, alarm_category::fire), equals_rule("fault", 2, alarm_category::fault)});
  std::vector<alarm_engine::device_rules> devices;
  for (const auto* n : {"d1", "d2", "d3"}) devices.emplace_back(n, list);
  auto engine = make_engine(devices);
  devices.clear();
  CHECK(list.use_count() > 1);
  REQUIRE(engine.on_readings(std::vector{state("d1", 1)}, t0).size() == 1);
  const auto reloaded = std::make_shared<const std::vector<alarm_rule>>(*list);
  for (const auto* n : {"d1", "d2", "d3"}) devices.emplace_back(n, reloaded);
  CHECK(engine.reconfigure(devices, {}, clock::now()).empty());  // unchanged: d1's fire stays open
  CHECK(list.use_count() == 1);
  CHECK(engine.count().fire == 1);
  // The kept state decides with the new list: the fire ends when the state goes back to normal.
  auto out = engine.on_readings(std::vector{state("d1", 0)}, t0 + 1s);
  REQUIRE(out.size() == 1);
  CHECK(out[0].kind == event_kind::fire_recovery);
}

TEST_CASE("engine: a reload keeps unchanged rules' alarms - recovers those whose rule changed") {
  auto engine = make_engine(sd1s({"d1", "d2"}));
  REQUIRE(engine.on_readings(std::vector{state("d1", 1), state("d2", 1)}, t0).size() == 2);
  auto changed = sd1s({"d1", "d2"});
  auto d2_rules = *changed[1].rules;
  d2_rules[0].condition.values = {1, 4};  // d2's fire rule changed
  changed[1].rules = std::make_shared<const std::vector<alarm_rule>>(std::move(d2_rules));
  auto out = engine.reconfigure(changed, {}, clock::now());
  REQUIRE(out.size() == 1);
  CHECK(out[0].kind == event_kind::fire_recovery);
  CHECK(out[0].device == "d2");
  CHECK(out[0].detail.find("changed or removed by a reload") != std::string::npos);
  CHECK(engine.on_readings(std::vector{state("d1", 1)}, t0 + 1s).empty());      // d1 still active: no repeat
  CHECK(engine.on_readings(std::vector{state("d2", 1)}, t0 + 1s).size() == 1);  // d2 decided afresh
}

TEST_CASE("engine: offline is a fault - online again its recovery") {
  auto engine = make_engine({});
  device_status down{"d1", false, std::make_error_code(std::errc::timed_out), "127.0.0.1:1502 unit 1", {}};
  auto fault = engine.on_device_status(down, t0);
  REQUIRE(fault.size() == 1);
  CHECK(fault[0].kind == event_kind::device_offline);
  CHECK(fault[0].detail.find("127.0.0.1:1502 unit 1") != std::string::npos);
  CHECK(engine.on_device_status(down, t0).empty());
  device_status up{"d1", true, {}, "127.0.0.1:1502 unit 1", {}};
  auto back = engine.on_device_status(up, t0);
  REQUIRE(back.size() == 1);
  CHECK(back[0].kind == event_kind::device_online);
  CHECK(back[0].alarm_id == fault[0].id);
  CHECK(category_of(back[0].kind) == "recovery");
}

TEST_CASE(
    "engine: a bus down is one fault - its devices offline with it raise nothing - back is its recovery") {
  auto engine = make_engine({});
  const auto ec = std::make_error_code(std::errc::connection_refused);
  bus_status down{
      "line-1",     false,        ec, "127.0.0.1:1502", "it cannot be opened (Connection refused)",
      {"d1", "d2"}, clock::now(), {}};
  auto fault = engine.on_bus_status(down);
  REQUIRE(fault.size() == 1);
  CHECK(fault[0].kind == event_kind::bus_offline);
  CHECK(fault[0].device == "line-1");
  REQUIRE(fault[0].bus);
  CHECK(fault[0].bus->devices.size() == 2);
  CHECK(fault[0].detail.find("127.0.0.1:1502") != std::string::npos);
  CHECK(fault[0].detail.find("d1, d2") != std::string::npos);
  CHECK(engine.on_bus_status(down).empty());  // still down: no second alert
  device_status by_bus{"d1", false, ec, "127.0.0.1:1502 unit 1", {}, true};
  CHECK(engine.on_device_status(by_bus, t0).empty());
  CHECK(engine.count().fault == 1);
  const auto open = engine.open_alarms();
  REQUIRE(open.size() == 1);
  CHECK(open[0].kind == event_kind::bus_offline);

  // The bus back; a device that stays silent after it raises its own fault, one covered by the bus
  // and back with it raises nothing.
  bus_status up{"line-1", true, {}, "127.0.0.1:1502", {}, {"d1", "d2"}, clock::now(), {}};
  device_status d2_by_bus{"d2", false, ec, "127.0.0.1:1502 unit 2", {}, true};
  CHECK(engine.on_device_status(d2_by_bus, t0).empty());
  auto back = engine.on_bus_status(up);
  REQUIRE(back.size() == 1);
  CHECK(back[0].kind == event_kind::bus_online);
  CHECK(back[0].alarm_id == fault[0].id);
  CHECK(engine.on_device_status({"d1", true, {}, "127.0.0.1:1502 unit 1", {}}, t0).empty());
  device_status own{"d2", false, std::make_error_code(std::errc::timed_out), "127.0.0.1:1502 unit 2", {}};
  auto single = engine.on_device_status(own, t0);
  REQUIRE(single.size() == 1);
  CHECK(single[0].kind == event_kind::device_offline);

  // Restored after a restart, the bus's first answer ends it.
  auto restarted = make_engine({});
  CHECK(restarted.restore(open, {}, t0, clock::now()).empty());
  auto ended = restarted.on_bus_status(up);
  REQUIRE(ended.size() == 1);
  CHECK(ended[0].alarm_id == fault[0].id);
  CHECK(restarted.on_bus_status(up).empty());
  // A bus a reload removed: its fault ends, saying so.
  CHECK(engine.on_bus_status(down).size() == 1);
  CHECK(engine.end_bus_faults_except({"line-1"}, clock::now()).empty());
  auto removed = engine.end_bus_faults_except({"line-2"}, clock::now());
  REQUIRE(removed.size() == 1);
  CHECK(removed[0].kind == event_kind::bus_online);
  CHECK(removed[0].detail.find("no longer in the configuration") != std::string::npos);
  for (const auto& a : engine.open_alarms()) CHECK(a.kind != event_kind::bus_offline);
}

TEST_CASE(
    "engine: alarms open at the last stop are restored - not raised again - ended by the first normal "
    "reading") {
  auto engine = make_engine(sd1s({"d1", "d2", "d3"}));
  const auto wall = clock::time_point(1'790'000'000s);
  const auto open_one = [](std::string id, event_kind kind, std::string device, std::string rule,
                           double value) {
    open_alarm a;
    a.id = std::move(id);
    a.kind = kind;
    a.device = std::move(device);
    a.rule = std::move(rule);
    a.value = value;
    return a;
  };
  std::vector<open_alarm> open{
      open_one("fire-d1", event_kind::fire_alarm, "d1", "fire", 1),
      open_one("fire-d2", event_kind::fire_alarm, "d2", "fire", 1),
      open_one("gone", event_kind::device_fault, "d2", "no_such_rule", 0),
      open_one("off-d3", event_kind::device_offline, "d3", "", 0),
  };
  auto ended = engine.restore(open, {}, t0, wall);
  REQUIRE(ended.size() == 1);  // the alarm whose rule is no longer configured
  CHECK(ended[0].kind == event_kind::device_fault_recovery);
  CHECK(ended[0].alarm_id == "gone");
  CHECK(engine.active_fires() == 2);
  CHECK(engine.on_readings(std::vector{state("d1", 1)}, t0).empty());  // still burning: not raised again
  auto out = engine.on_readings(std::vector{state("d2", 0), state("d3", 0)}, t0);
  REQUIRE(out.size() == 2);
  CHECK(out[0].kind == event_kind::fire_recovery);
  CHECK(out[0].alarm_id == "fire-d2");
  CHECK(out[1].kind == event_kind::device_online);  // d3 answers: its fault from before the stop ends
  CHECK(out[1].alarm_id == "off-d3");
  CHECK(engine.active_fires() == 1);
}

TEST_CASE(
    "engine: low battery and tamper of a wireless detector are rules like any other - a fault and a "
    "supervisory alarm") {
  alarm_rule battery;
  battery.name = "battery_low";
  battery.point = "battery";
  battery.category = alarm_category::fault;
  battery.text = "battery low";
  battery.condition.kind = condition_kind::low;
  battery.condition.set = 20;
  battery.condition.clear = 25;
  alarm_rule tamper;
  tamper.name = "tamper";
  tamper.point = "tamper";
  tamper.category = alarm_category::supervisory;
  tamper.text = "detector removed from its base";
  tamper.condition.kind = condition_kind::equals;
  tamper.condition.values = {1};
  auto engine = make_engine({{"zb-smoke-3", {battery, tamper}}});
  const auto at = [](const char* point, double v, const char* unit) {
    return reading{"zb-smoke-3", point, v, unit, quality::good, clock::time_point(1'790'000'000s)};
  };
  auto low = engine.on_readings(std::vector{at("battery", 19, "%")}, t0);
  REQUIRE(low.size() == 1);
  CHECK(low[0].kind == event_kind::device_fault);
  CHECK(low[0].detail == "battery low: 19 % (setting 20 %)");
  CHECK(engine.on_readings(std::vector{at("battery", 24, "%")}, t0 + 1s).empty());  // hysteresis
  CHECK(engine.on_readings(std::vector{at("battery", 25, "%")}, t0 + 2s).size() == 1);
  auto removed = engine.on_readings(std::vector{at("tamper", 1, "")}, t0 + 3s);
  REQUIRE(removed.size() == 1);
  CHECK(removed[0].kind == event_kind::supervisory_alarm);
  CHECK(on_alarm_lane(removed[0].kind));
}
