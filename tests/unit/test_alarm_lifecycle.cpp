// The alarm lifecycle, table-driven: latching until acknowledged, acknowledgement with its verdict,
// escalation of an unacknowledged fire alarm, shields and test mode (and their running out), false
// alarms counted per device per day, and all of it restored after a restart.

#include "rules/alarm_engine.hpp"

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <sstream>

using namespace firegate;
using namespace firegate::rules;
using namespace std::chrono_literals;

namespace {

using k = event_kind;

alarm_rule fire_rule(bool latch) {
  alarm_rule r;
  r.name = "fire";
  r.point = "state";
  r.category = alarm_category::fire;
  r.latch = latch;
  r.text = "detector reports fire";
  r.condition.kind = condition_kind::equals;
  r.condition.values = {1};
  return r;
}

/// One device, "d1", with a fire rule; a script of steps, each with the events it must cause.
class script {
 public:
  explicit script(bool latch, alarm_policy policy = {}) : engine_(make(latch, policy)) {}

  /// Steps: "fire", "normal", "tick N" (seconds since the start), "ack VERDICT" (the last alarm),
  /// "ack-again", "ack-unknown", "shield N", "unshield", "test-on", "test-off", "offline", "online".
  std::vector<event> run(const std::string& step) {
    std::istringstream in(step);
    std::string verb;
    std::string arg;
    in >> verb >> arg;
    error_.clear();
    std::vector<event> out;
    const auto take = [&](alarm_engine::outcome o) {
      error_ = o.error;
      out = std::move(o.events);
    };
    if (verb == "fire" || verb == "normal") {
      reading r{"d1", "state", verb == "fire" ? 1.0 : 0.0, "", quality::good, wall()};
      out = engine_.on_readings(std::vector{r}, mono_now());
    } else if (verb == "tick") {
      now_ = std::chrono::seconds(std::stoi(arg));
      out = engine_.on_tick(mono_now(), wall());
    } else if (verb == "ack") {
      take(engine_.acknowledge(last_alarm_, *parse_verdict(arg), "operator 12", wall()));
    } else if (verb == "ack-again") {
      take(engine_.acknowledge(last_alarm_, verdict::real, "operator 13", wall()));
    } else if (verb == "ack-unknown") {
      take(engine_.acknowledge("no-such-id", verdict::real, "operator 12", wall()));
    } else if (verb == "shield") {
      take(engine_.shield("d1", std::chrono::seconds(std::stoi(arg)), "detector dusty", "tech 7", mono_now(),
                          wall()));
    } else if (verb == "unshield") {
      take(engine_.unshield("d1", "tech 7", mono_now(), wall()));
    } else if (verb == "test-on" || verb == "test-off") {
      take(engine_.set_test_mode("d1", verb == "test-on", 3600s, "tech 7", mono_now(), wall()));
    } else if (verb == "offline" || verb == "online") {
      device_status s{"d1", verb == "online", std::make_error_code(std::errc::timed_out),
                      "10.0.0.5:502 unit 1", wall()};
      out = engine_.on_device_status(s, mono_now());
    } else {
      FAIL("unknown step " << step);
    }
    for (const auto& e : out) {
      if (is_alarm(e.kind)) last_alarm_ = e.id;
    }
    return out;
  }
  const std::string& error() const { return error_; }
  alarm_engine& engine() { return engine_; }
  std::chrono::seconds now_{0};

  mono::time_point mono_now() const { return mono::time_point(1000s) + now_; }
  clock::time_point wall() const { return clock::time_point(1'790'000'000s) + now_; }

 private:
  static alarm_engine make(bool latch, alarm_policy policy) {
    auto n = std::make_shared<int>(0);
    return alarm_engine(
        {{"d1", {fire_rule(latch)}}}, [n] { return "e" + std::to_string(++*n); }, policy);
  }
  alarm_engine engine_;
  std::string last_alarm_;
  std::string error_;
};

std::string kinds(const std::vector<event>& events) {
  std::string s;
  for (const auto& e : events)
    s += fmt::format("{}{}{} ", to_string(e.kind), e.test ? "(test)" : "",
                     e.repeat > 0 ? fmt::format("#{}", e.repeat) : "");
  return s;
}

struct scenario {
  const char* name;
  bool latch;
  std::vector<std::pair<std::string, std::string>> steps;  ///< step, the events it causes ("" none)
};

}  // namespace

TEST_CASE("lifecycle: every transition - table-driven") {
  const std::vector<scenario> scenarios{
      {"unlatched: clears by itself", false, {{"fire", "fire_alarm "}, {"normal", "fire_recovery "}}},
      {"latched: stays after its condition clears until acknowledged",
       true,
       {{"fire", "fire_alarm "},
        {"normal", ""},
        {"tick 10", ""},
        {"ack real", "alarm_acknowledged fire_recovery "}}},
      {"latched: acknowledged while it holds - recovers when it clears",
       true,
       {{"fire", "fire_alarm "},
        {"ack real", "alarm_acknowledged "},
        {"fire", ""},
        {"normal", "fire_recovery "}}},
      {"latched: holding again before acknowledgement is the same alarm",
       true,
       {{"fire", "fire_alarm "},
        {"normal", ""},
        {"fire", ""},
        {"ack false", "alarm_acknowledged "},
        {"normal", "fire_recovery "}}},
      {"escalation: raised again each interval until acknowledged",
       false,
       {{"fire", "fire_alarm "},
        {"tick 299", ""},
        {"tick 300", "alarm_escalation#1 "},
        {"tick 599", ""},
        {"tick 600", "alarm_escalation#2 "},
        {"ack real", "alarm_acknowledged "},
        {"tick 1200", ""}}},
      {"escalation: a latched alarm whose condition cleared still escalates",
       true,
       {{"fire", "fire_alarm "}, {"normal", ""}, {"tick 300", "alarm_escalation#1 "}}},
      {"shield: ends open alarms - raises nothing - whatever holds is raised when lifted",
       false,
       {{"fire", "fire_alarm "},
        {"shield 3600", "device_shielded fire_recovery "},
        {"normal", ""},
        {"fire", ""},
        {"offline", ""},
        {"unshield", "device_unshielded fire_alarm device_offline "}}},
      {"shield: runs out by itself",
       false,
       {{"shield 60", "device_shielded "},
        {"fire", ""},
        {"tick 59", ""},
        {"tick 60", "device_unshielded fire_alarm "}}},
      {"test mode: alarms marked test - no escalation - real again when it ends",
       false,
       {{"test-on", "test_mode_started "},
        {"fire", "fire_alarm(test) "},
        {"tick 900", ""},
        {"test-off", "test_mode_ended fire_recovery(test) fire_alarm "},
        {"tick 1200", "alarm_escalation#1 "}}},
      {"test mode: a real alarm from before stays real",
       false,
       {{"fire", "fire_alarm "},
        {"test-on", "test_mode_started "},
        {"test-off", "test_mode_ended "},
        {"normal", "fire_recovery "}}},
      {"offline: a fault until it answers",
       false,
       {{"offline", "device_offline "}, {"offline", ""}, {"online", "device_online "}}},
  };
  for (const auto& sc : scenarios) {
    script s(sc.latch);
    for (const auto& [step, expected] : sc.steps) {
      INFO(sc.name << " / step: " << step);
      CHECK(kinds(s.run(step)) == expected);
      CHECK(s.error().empty());
    }
  }
}

TEST_CASE(
    "lifecycle: refusals change nothing - unknown id - acknowledged twice - not shielded - shielded twice") {
  script s(true);
  CHECK(s.run("ack-unknown").empty());
  CHECK(s.error() == "no open alarm has id no-such-id: it has cleared already or is not this gateway's");
  s.run("fire");
  CHECK(kinds(s.run("ack test")) == "alarm_acknowledged ");
  CHECK(s.run("ack-again").empty());
  CHECK(s.error() == "alarm e1 was already acknowledged by operator 12 as test");
  CHECK(s.run("unshield").empty());
  CHECK(s.error() == "d1 is not shielded");
  CHECK(s.run("test-off").empty());
  CHECK(s.error() == "d1 is not in test mode");
  s.run("shield 600");
  CHECK(s.run("shield 600").empty());
  CHECK(s.error().find("d1 is already shielded until 2026-09-21 ") == 0);
}

TEST_CASE(
    "lifecycle: an acknowledgement carries who - the verdict - the first time - escalations ack by their "
    "id") {
  script s(false);
  const auto fire = s.run("fire");
  s.now_ = 300s;
  const auto esc = s.engine().on_tick(s.mono_now(), s.wall());
  REQUIRE(esc.size() == 1);
  CHECK(esc[0].alarm_id == fire[0].id);
  CHECK(esc[0].first_time == fire[0].time);
  CHECK(esc[0].detail == "not acknowledged after 5 min (raised again, 1 time): detector reports fire");
  auto ack = s.engine().acknowledge(esc[0].id, verdict::real, "operator 12", s.wall());
  REQUIRE(ack.ok());
  REQUIRE(ack.events.size() == 1);
  CHECK(ack.events[0].alarm_id == fire[0].id);
  CHECK(ack.events[0].verdict == "real");
  CHECK(ack.events[0].actor == "operator 12");
  CHECK(ack.events[0].first_time == fire[0].time);
  const auto rec = s.run("normal");
  REQUIRE(rec.size() == 1);
  CHECK(rec[0].verdict == "real");  // the recovery says how it was confirmed
  CHECK(rec[0].alarm_id == fire[0].id);
}

TEST_CASE(
    "lifecycle: false alarms are counted per device per day - over the limit the acknowledgement says so") {
  script s(false, alarm_policy{0s, 2});
  std::vector<unsigned> counts;
  for (int i = 0; i < 3; ++i) {
    s.run("fire");
    const auto ack = s.run("ack false");
    REQUIRE(ack.size() == 1);
    counts.push_back(ack[0].false_alarms_today);
    CHECK((ack[0].detail.find("needs a handling plan") != std::string::npos) == (i == 2));
    s.run("normal");
  }
  CHECK(counts == std::vector<unsigned>{1, 2, 3});
  CHECK(s.run("fire")[0].false_alarms_today == 3);  // the next alarm of the unit shows its record
  s.run("ack real");
  s.run("normal");
  s.now_ = 48h;  // another day
  CHECK(s.run("fire")[0].false_alarms_today == 0);
  // A test alarm confirmed false is not the unit's false alarm.
  s.run("ack real");
  s.run("normal");
  s.run("test-on");
  s.run("fire");
  CHECK(s.run("ack false")[0].false_alarms_today == 0);
}

TEST_CASE(
    "lifecycle: restored after a restart - acknowledged stays quiet - latched waits - shields run out") {
  auto n = std::make_shared<int>(0);
  alarm_engine engine({{"d1", {fire_rule(true)}}, {"d2", {fire_rule(true)}}, {"d3", {fire_rule(false)}}},
                      [n] { return "r" + std::to_string(++*n); });
  const auto wall = clock::time_point(1'790'000'000s);
  const auto t = mono::time_point(5000s);
  const auto open = [](std::string id, event_kind kind, std::string device) {
    open_alarm a;
    a.id = std::move(id);
    a.kind = kind;
    a.device = std::move(device);
    a.rule = kind == event_kind::device_shielded ? "" : "fire";
    a.value = 1;
    a.time = clock::time_point(1'789'999'000s);
    return a;
  };
  auto acked = open("a1", k::fire_alarm, "d1");
  acked.verdict = "real";
  acked.actor = "operator 12";
  auto unacked = open("a2", k::fire_alarm, "d2");
  unacked.repeats = 2;
  auto shield = open("s3", k::device_shielded, "d3");
  shield.until = wall - 1s;  // ran out while stopped
  auto out = engine.restore({acked, unacked, shield}, {{"d2", 4}}, t, wall);
  CHECK(kinds(out) == "device_unshielded ");
  CHECK(engine.active_fires() == 2);
  reading d1{"d1", "state", 0, "", quality::good, wall}, d2{"d2", "state", 0, "", quality::good, wall};
  CHECK(kinds(engine.on_readings(std::vector{d1}, t)) == "fire_recovery ");  // acknowledged: clears
  CHECK(engine.on_readings(std::vector{d2}, t).empty());                     // latched, unacknowledged: waits
  auto esc = engine.on_tick(t + 300s, wall + 300s);
  CHECK(kinds(esc) == "alarm_escalation#3 ");  // counts on from the stored repeats
  CHECK(esc[0].false_alarms_today == 4);
  auto ack = engine.acknowledge("a2", verdict::false_alarm, "operator 12", wall + 300s);
  CHECK(kinds(ack.events) == "alarm_acknowledged fire_recovery ");
  CHECK(ack.events[0].false_alarms_today == 5);
  CHECK(engine.open_alarms().empty());
}

TEST_CASE("lifecycle: the self-test - one at a time - the acknowledgement ends it - it survives a restart") {
  auto n = std::make_shared<int>(0);
  const auto make = [n] {
    return alarm_engine({{"d1", {fire_rule(true)}}}, [n] { return "st" + std::to_string(++*n); });
  };
  auto engine = make();
  const auto wall = clock::time_point(1'790'000'000s);
  auto raised = engine.self_test("tech 7", wall);
  REQUIRE(raised.ok());
  REQUIRE(raised.events.size() == 1);
  const auto& alarm = raised.events[0];
  CHECK(alarm.kind == k::fire_alarm);
  CHECK(alarm.test);
  CHECK(alarm.device.empty());
  CHECK(alarm.rule == "self_test");
  CHECK(engine.count().test == 1);
  CHECK(engine.count().fire == 0);
  CHECK(engine.active_fires() == 0);
  CHECK(
      engine.self_test("tech 8", wall + 1s).error ==
      "self-test st1 raised at 2026-09-21 14:13:20 UTC is still waiting for the platform's acknowledgement");
  CHECK(engine.on_tick(mono::time_point(10'000s), wall + 10'000s).empty());  // a test never escalates

  // Restarted before the platform answered: still open, not raised again.
  auto open = engine.open_alarms();
  REQUIRE(open.size() == 1);
  CHECK(open[0].rule == "self_test");
  auto restarted = make();
  CHECK(restarted.restore(open, {}, mono::time_point(1s), wall + 60s).empty());
  auto acked = restarted.acknowledge(alarm.id, verdict::test, "operator 12", wall + 62'500ms);
  REQUIRE(acked.ok());
  REQUIRE(acked.events.size() == 2);
  CHECK(acked.events[0].kind == k::alarm_acknowledged);
  CHECK(acked.events[0].detail ==
        "self-test acknowledged by operator 12 as test, 62.5 s after it was raised");
  CHECK(acked.events[0].test);
  CHECK(acked.events[1].kind == k::fire_recovery);
  CHECK(acked.events[1].alarm_id == alarm.id);
  CHECK(restarted.count().test == 0);
  CHECK(restarted.self_test("tech 7", wall + 70s).ok());  // the next one may start
}
