// Linkage outputs belong to the output, not to one alarm: held while any alarm a linkage matches is
// open, reset only when the last ends, held together by two linkages, re-asserted on an escalation
// and after a restart, released by a reload that drops the linkage.

#include "rules/linkage.hpp"

#include <catch2/catch.hpp>

#include <cmath>

using namespace firegate;

namespace {

config::linkage_config linkage(std::string name, std::vector<std::string> devices, double value = 1,
                               std::optional<double> reset = 0.0, std::string output = "relay-1") {
  config::linkage_config l;
  l.name = std::move(name);
  l.on = firegate::alarm_category::fire;
  l.devices = std::move(devices);
  l.device = std::move(output);
  l.write = "siren";
  l.value = value;
  l.reset_value = reset;
  return l;
}

open_alarm open_fire(std::string id, std::string device, bool test = false) {
  open_alarm a;
  a.id = std::move(id);
  a.kind = event_kind::fire_alarm;
  a.device = std::move(device);
  a.rule = "fire";
  a.test = test;
  return a;
}

event caused(event_kind kind, std::string id, std::string alarm_id = {}) {
  event e;
  e.kind = kind;
  e.id = std::move(id);
  e.alarm_id = std::move(alarm_id);
  return e;
}

}  // namespace

TEST_CASE("linkage outputs: one output held by two fires is reset only when the last ends") {
  linkage_outputs l;
  const std::vector links{linkage("sounder", {"smoke-1", "smoke-2"})};
  const auto a = open_fire("A", "smoke-1"), b = open_fire("B", "smoke-2");
  auto e = caused(event_kind::fire_alarm, "A");
  auto acts = l.update(links, {a}, &e);
  REQUIRE(acts.size() == 1);
  CHECK(acts[0].value == 1);
  CHECK_FALSE(acts[0].reset);
  CHECK(acts[0].alarm_id == "A");
  // B joins: the output is asserted again, written only if it reads back different (a write for A
  // that failed, a sounder switched off by hand meanwhile).
  e = caused(event_kind::fire_alarm, "B");
  acts = l.update(links, {a, b}, &e);
  REQUIRE(acts.size() == 1);
  CHECK(acts[0].only_if_differs);
  CHECK_FALSE(acts[0].reset);
  CHECK(acts[0].alarm_id == "B");
  CHECK(l.holders("relay-1", "siren").size() == 2);
  e = caused(event_kind::fire_recovery, "R1", "A");
  CHECK(l.update(links, {b}, &e).empty());
  e = caused(event_kind::fire_recovery, "R2", "B");
  acts = l.update(links, {}, &e);
  REQUIRE(acts.size() == 1);
  CHECK(acts[0].reset);
  CHECK(acts[0].value == 0);
  CHECK(acts[0].alarm_id == "B");
  CHECK(l.holders("relay-1", "siren").empty());
}

TEST_CASE("linkage outputs: a kitchen and a dining linkage on one sounder hold it together") {
  linkage_outputs l;
  const std::vector links{linkage("kitchen", {"smoke-k"}), linkage("dining", {"smoke-d"})};
  const auto k = open_fire("K", "smoke-k"), d = open_fire("D", "smoke-d");
  auto e = caused(event_kind::fire_alarm, "K");
  REQUIRE(l.update(links, {k}, &e).size() == 1);
  e = caused(event_kind::fire_alarm, "D");
  auto joined = l.update(links, {k, d}, &e);
  REQUIRE(joined.size() == 1);
  CHECK(joined[0].only_if_differs);
  e = caused(event_kind::fire_recovery, "R", "K");
  CHECK(l.update(links, {d}, &e).empty());  // dining still holds it
  e = caused(event_kind::fire_recovery, "R2", "D");
  auto acts = l.update(links, {}, &e);
  REQUIRE(acts.size() == 1);
  CHECK(acts[0].reset);
  CHECK(acts[0].linkages == std::vector<std::string>{"dining"});
}

TEST_CASE("linkage outputs: test alarms, other categories and devices hold nothing") {
  linkage_outputs l;
  const std::vector links{linkage("sounder", {"smoke-1"})};
  auto sup = open_fire("S", "smoke-1");
  sup.kind = event_kind::supervisory_alarm;
  CHECK(l.update(links, {open_fire("T", "smoke-1", true), open_fire("O", "smoke-9"), sup}, nullptr).empty());
  auto with_rule = linkage("leak", {});
  with_rule.rule = "leakage";
  CHECK(l.update({with_rule}, {open_fire("A", "smoke-1")}, nullptr).empty());
  auto leak = open_fire("L", "efd-1");
  leak.rule = "leakage";
  CHECK(l.update({with_rule}, {leak}, nullptr).size() == 1);
}

TEST_CASE("linkage outputs: an escalation re-asserts, a restart asserts what the open alarms hold") {
  linkage_outputs l;
  const std::vector links{linkage("sounder", {"smoke-1"})};
  const auto a = open_fire("A", "smoke-1");
  auto e = caused(event_kind::fire_alarm, "A");
  REQUIRE(l.update(links, {a}, &e).size() == 1);
  e = caused(event_kind::alarm_escalation, "E1", "A");
  auto acts = l.update(links, {a}, &e);
  REQUIRE(acts.size() == 1);
  CHECK(acts[0].only_if_differs);
  CHECK(acts[0].value == 1);
  // An escalation of an alarm holding nothing changes nothing.
  e = caused(event_kind::alarm_escalation, "E2", "X");
  CHECK(l.update(links, {a}, &e).empty());

  linkage_outputs after_restart;
  acts = after_restart.restore(links, {a, open_fire("T", "smoke-1", true)});
  REQUIRE(acts.size() == 1);
  CHECK(acts[0].only_if_differs);
  CHECK(acts[0].alarm_id == "A");
  CHECK(after_restart.holders("relay-1", "siren").size() == 1);
}

TEST_CASE("linkage outputs: a reload that drops the linkage releases its output - no reset_value, no write") {
  linkage_outputs l;
  const auto a = open_fire("A", "smoke-1");
  REQUIRE(l.update({linkage("sounder", {"smoke-1"})}, {a}, nullptr).size() == 1);
  auto acts = l.update({}, {a}, nullptr);
  REQUIRE(acts.size() == 1);
  CHECK(acts[0].reset);
  CHECK(acts[0].alarm_id == "A");

  linkage_outputs breaker;
  const std::vector trip{linkage("power-cut", {"smoke-1"}, 1, std::nullopt)};
  REQUIRE(breaker.update(trip, {a}, nullptr).size() == 1);
  CHECK(breaker.update(trip, {}, nullptr).empty());  // the power comes back by hand
}

TEST_CASE(
    "linkage outputs: a failed or forced write leaves the output in doubt - asserted again at the next "
    "update") {
  linkage_outputs l;
  const std::vector links{linkage("sounder", {"smoke-1", "smoke-2"})};
  const auto a = open_fire("A", "smoke-1"), b = open_fire("B", "smoke-2");
  REQUIRE(l.update(links, {a}, nullptr).size() == 1);
  l.written("relay-1", "siren", 1, false);    // the relay did not answer
  auto acts = l.update(links, {a}, nullptr);  // a device back online, a reload
  REQUIRE(acts.size() == 1);
  CHECK(acts[0].only_if_differs);
  CHECK(acts[0].value == 1);
  l.written("relay-1", "siren", 1, true);
  CHECK(l.update(links, {a}, nullptr).empty());
  // firegatectl write --force: put back when a new alarm joins or one escalates, not by any update.
  l.written("relay-1", "siren", std::nan(""), false);
  CHECK(l.update(links, {a}, nullptr).empty());
  auto e = caused(event_kind::fire_alarm, "B");
  acts = l.update(links, {a, b}, &e);
  REQUIRE(acts.size() == 1);
  CHECK(acts[0].only_if_differs);
  // A reset's outcome for another value does not touch the held output's state.
  CHECK_FALSE(l.written("relay-1", "siren", 0, false));
  CHECK_FALSE(l.written("relay-1", "siren", 1, true));
  CHECK(l.update(links, {a, b}, nullptr).empty());
  // A failure says whether the output was in doubt already (the second failure raises no event).
  CHECK_FALSE(l.written("relay-1", "siren", 1, false));
  CHECK(l.written("relay-1", "siren", 1, false));
}

TEST_CASE(
    "linkage outputs: at start every output no open alarm holds is released if it reads back different") {
  linkage_outputs l;
  auto trip = linkage("power-cut", {"smoke-1"}, 1, std::nullopt);
  trip.write = "power_cut";
  const std::vector links{linkage("kitchen", {"smoke-1"}), linkage("dining", {"smoke-2"}), trip};
  auto acts = l.restore(links, {});
  REQUIRE(acts.size() == 1);  // one sounder for both; the breaker has no reset_value
  CHECK(acts[0].reset);
  CHECK(acts[0].only_if_differs);
  CHECK(acts[0].value == 0);
  CHECK(acts[0].linkages == std::vector<std::string>{"kitchen", "dining"});
  CHECK(acts[0].at_start);
}
