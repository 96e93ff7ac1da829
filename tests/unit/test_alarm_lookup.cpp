// Which alarm `firegatectl ack ID` means (daemon/app/alarm_lookup.hpp): the whole id, or a prefix
// that no other alarm known here starts with, open or past; otherwise what became of it, from its
// stored events.

#include "app/alarm_lookup.hpp"

#include <catch2/catch.hpp>

using namespace firegate;

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
const std::string fire = "8f9afc3c-fb41-4495-b311-4cd3d397bd73";
const std::string fault = "8f9a0001-0000-4000-8000-000000000000";
}  // namespace

TEST_CASE("alarm lookup: a prefix names one alarm only when no other, open or past, starts with it") {
  CHECK(alarm_id_problem("8f9a").empty());
  CHECK(alarm_id_problem("8f9").find("at least 4 characters") != std::string::npos);
  CHECK(alarm_id_problem("8f9*").find("not an alarm id") != std::string::npos);
  CHECK(alarm_id_problem("no-such-alarm").find("not an alarm id") != std::string::npos);

  const std::vector<open_alarm> now{
      open(fire, event_kind::fire_alarm, "smoke-1"), open(fault, event_kind::device_fault, "smoke-2"),
      open("77aa0000-0000-4000-8000-000000000000", event_kind::device_shielded, "smoke-3"),
      open("5555aaaa-0000-4000-8000-000000000000", event_kind::bus_offline, "tcp-1")};
  const std::vector<event> history{stored(fire, event_kind::fire_alarm),
                                   stored(fault, event_kind::device_fault)};
  REQUIRE(open_alarm_exactly(now, fire) != nullptr);
  CHECK(open_alarm_exactly(now, "8f9afc3c") == nullptr);

  CHECK(resolve_ack("8f9afc", now, history).alarm == fire);
  const auto both = resolve_ack("8f9a", now, history);
  CHECK(both.alarm.empty());
  CHECK(both.state == "ambiguous");
  CHECK(both.message.find("starts the id of 2 alarms") != std::string::npos);
  CHECK(both.message.find(fault + " (device_fault on smoke-2 since") != std::string::npos);

  // A cleared alarm whose id starts as the open fire's: the prefix no longer names the fire alone.
  auto with_past = history;
  with_past.push_back(stored("8f9afc3c-0000-4000-8000-00000000dead", event_kind::fire_alarm));
  const auto past_too = resolve_ack("8f9afc3c", now, with_past);
  CHECK(past_too.state == "ambiguous");
  CHECK(past_too.message.find("8f9afc3c-0000-4000-8000-00000000dead (past)") != std::string::npos);

  // A shield is lifted, not acknowledged; a bus fault ends when the bus answers.
  CHECK(resolve_ack("77aa", now, {}).state == "unknown");
  CHECK(resolve_ack("5555", now, {}).state == "not_acknowledged");
}

TEST_CASE("alarm lookup: no open alarm - acknowledged already, cleared, an escalation's id, or unknown") {
  const std::string past = "1234abcd-0000-4000-8000-000000000001";
  const std::vector<event> acked{
      stored(past, event_kind::fire_alarm),
      stored("aaaa0000-0000-4000-8000-000000000002", event_kind::alarm_acknowledged, past, "operator 12",
             "false"),
      stored("bbbb0000-0000-4000-8000-000000000003", event_kind::fire_recovery, past)};
  const auto a = resolve_ack("1234", {}, acked);
  CHECK(a.state == "acknowledged");
  CHECK(a.message.find("fire_alarm on smoke-1") != std::string::npos);
  CHECK(a.message.find("by operator 12 as false") != std::string::npos);
  // The acknowledgement's own id names no alarm.
  CHECK(resolve_ack("aaaa", {}, acked).state == "unknown");

  const std::vector<event> cleared{
      stored(past, event_kind::fire_alarm),
      stored("bbbb0000-0000-4000-8000-000000000003", event_kind::fire_recovery, past)};
  const auto c = resolve_ack("1234abcd", {}, cleared);
  CHECK(c.state == "cleared");
  CHECK(c.message.find("without an acknowledgement") != std::string::npos);

  // An escalation's own id names its alarm, which is acknowledged when it is open.
  const std::vector<event> escalated{
      stored(past, event_kind::fire_alarm),
      stored("cccc0000-0000-4000-8000-000000000004", event_kind::alarm_escalation, past)};
  CHECK(resolve_ack("cccc0000-0000-4000-8000-000000000004", {open(past, event_kind::fire_alarm, "smoke-1")},
                    escalated)
            .alarm == past);

  CHECK(resolve_ack("dead", {}, {}).state == "unknown");
  CHECK(resolve_ack("dead", {}, {}).message.find("no alarm on this gateway has an id starting \"dead\"") !=
        std::string::npos);
}
