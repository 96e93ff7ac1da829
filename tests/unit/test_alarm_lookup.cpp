// Which alarm `firegatectl ack ID` means (daemon/app/alarm_lookup.hpp): the whole id or a unique
// prefix of an open alarm's, and otherwise what became of it, from its stored events.

#include "app/alarm_lookup.hpp"

#include <catch2/catch.hpp>

using namespace firegate;
using namespace std::chrono_literals;

namespace {
open_alarm open(std::string id, event_kind kind, std::string device) {
  open_alarm a;
  a.id = std::move(id);
  a.kind = kind;
  a.device = std::move(device);
  return a;
}
event stored(std::string id, event_kind kind, std::string alarm_id = {}, std::string actor = {},
             std::string verdict = {}) {
  event e;
  e.id = std::move(id);
  e.kind = kind;
  e.device = "smoke-1";
  e.alarm_id = std::move(alarm_id);
  e.actor = std::move(actor);
  e.verdict = std::move(verdict);
  return e;
}
}  // namespace

TEST_CASE("alarm lookup: a prefix names the one open alarm whose id starts with it - ambiguity lists each") {
  const std::vector<open_alarm> now{
      open("8f9afc3c-fb41-4495-b311-4cd3d397bd73", event_kind::fire_alarm, "smoke-1"),
      open("8f9a0001-0000-4000-8000-000000000000", event_kind::device_fault, "smoke-2"),
      open("8f9afc3c", event_kind::supervisory_alarm, "efd-1"),  // an id that is another's prefix
      open("77aa0000-0000-4000-8000-000000000000", event_kind::device_shielded, "smoke-3"),
  };
  CHECK(alarm_id_problem("8f9a").empty());
  CHECK(alarm_id_problem("8f9").find("at least 4 characters") != std::string::npos);
  CHECK(alarm_id_problem("8f9*").find("not an alarm id") != std::string::npos);
  CHECK(alarm_id_problem("no-such-alarm").find("not an alarm id") != std::string::npos);

  auto one = open_alarms_matching(now, "8f9afc3c-fb");
  REQUIRE(one.size() == 1);
  CHECK(one[0].device == "smoke-1");
  // The whole of one id, though another id starts with it: that one is meant.
  auto exact = open_alarms_matching(now, "8f9afc3c");
  REQUIRE(exact.size() == 1);
  CHECK(exact[0].device == "efd-1");
  auto several = open_alarms_matching(now, "8f9a");
  REQUIRE(several.size() == 3);
  const auto text = ambiguous_open_alarms("8f9a", several);
  CHECK(text.find("starts the id of 3 open alarms") != std::string::npos);
  CHECK(text.find("8f9a0001-0000-4000-8000-000000000000 (device_fault on smoke-2") != std::string::npos);
  CHECK(text.find("give more of the id") != std::string::npos);
  // A shield is lifted, not acknowledged.
  CHECK(open_alarms_matching(now, "77aa").empty());
}

TEST_CASE("alarm lookup: no open alarm - acknowledged already, cleared, an escalation's id, or unknown") {
  const std::string fire = "1234abcd-0000-4000-8000-000000000001";
  SECTION("acknowledged, then cleared: who said what") {
    const auto past = explain_past_alarm(
        "1234", {stored(fire, event_kind::fire_alarm),
                 stored("aaaa0000-0000-4000-8000-000000000002", event_kind::alarm_acknowledged, fire,
                        "operator 12", "false"),
                 stored("bbbb0000-0000-4000-8000-000000000003", event_kind::fire_recovery, fire)});
    CHECK(past.state == "acknowledged");
    CHECK(past.alarm == fire);
    CHECK(past.message.find("fire_alarm on smoke-1") != std::string::npos);
    CHECK(past.message.find("by operator 12 as false") != std::string::npos);
  }
  SECTION("cleared with no acknowledgement") {
    const auto past = explain_past_alarm(
        "1234abcd", {stored(fire, event_kind::fire_alarm),
                     stored("bbbb0000-0000-4000-8000-000000000003", event_kind::fire_recovery, fire)});
    CHECK(past.state == "cleared");
    CHECK(past.message.find("without an acknowledgement") != std::string::npos);
  }
  SECTION("an escalation's own id names its alarm") {
    const auto past = explain_past_alarm(
        "cccc", {stored(fire, event_kind::fire_alarm),
                 stored("cccc0000-0000-4000-8000-000000000004", event_kind::alarm_escalation, fire)});
    CHECK(past.alarm == fire);
  }
  SECTION("two past alarms share the prefix") {
    const auto past = explain_past_alarm(
        "1234", {stored(fire, event_kind::fire_alarm),
                 stored("1234ffff-0000-4000-8000-000000000009", event_kind::device_offline)});
    CHECK(past.state == "ambiguous");
    CHECK(past.alarm.empty());
  }
  SECTION("nothing stored") {
    const auto past = explain_past_alarm("dead", {});
    CHECK(past.state == "unknown");
    CHECK(past.message.find("no alarm on this gateway has an id starting \"dead\"") != std::string::npos);
  }
}
