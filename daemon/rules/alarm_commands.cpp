// The alarm engine's side that people drive: acknowledgement, shields, test mode, and the state
// restored from the store at start (alarm_engine.hpp).

#include "alarm_engine.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <ctime>

namespace firegate {

using rules::mono;

int local_day(clock::time_point t) {
  const std::time_t secs = clock::to_time_t(t);
  std::tm local{};
  localtime_r(&secs, &local);
  return (local.tm_year + 1900) * 10000 + (local.tm_mon + 1) * 100 + local.tm_mday;
}

clock::time_point local_midnight(clock::time_point t) {
  const std::time_t secs = clock::to_time_t(t);
  std::tm local{};
  localtime_r(&secs, &local);
  local.tm_hour = local.tm_min = local.tm_sec = 0;
  local.tm_isdst = -1;
  return clock::from_time_t(std::mktime(&local));
}

unsigned alarm_engine::false_alarms_today(const std::string& device, clock::time_point wall) const {
  auto it = false_alarms_.find(device);
  return it != false_alarms_.end() && it->second.first == local_day(wall) ? it->second.second : 0;
}

unsigned alarm_engine::count_false_alarm(const std::string& device, clock::time_point wall) {
  auto& [day, count] = false_alarms_[device];
  const int today = local_day(wall);
  if (day != today) {
    day = today;
    count = 0;
  }
  return ++count;
}

alarm_engine::outcome alarm_engine::self_test(const std::string& by, clock::time_point wall) {
  if (self_test_) {
    return {
        fmt::format("self-test {} raised at {:%F %T} UTC is still waiting for the platform's acknowledgement",
                    self_test_->id, std::chrono::floor<std::chrono::seconds>(self_test_->first)),
        {}};
  }
  auto e = make_event(event_kind::fire_alarm, "", wall);
  e.rule = std::string(self_test_rule);
  e.test = true;
  e.detail =
      fmt::format("end-to-end self-test requested by {}: not a fire; acknowledge it with verdict test", by);
  alarm_record r;
  r.id = e.id;
  r.first = wall;
  r.detail = e.detail;
  r.holds = false;  // nothing to clear: the acknowledgement ends it
  r.latch = true;
  r.test = true;
  self_test_ = r;
  return {{}, {std::move(e)}};
}

alarm_engine::outcome alarm_engine::acknowledge(const std::string& alarm_id, verdict v, const std::string& by,
                                                clock::time_point wall) {
  if (self_test_ && self_test_->id == alarm_id) {
    auto& a = *self_test_;
    a.verdict = to_string(v);
    a.actor = by;
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(wall - a.first);
    auto e = about(event_kind::alarm_acknowledged, a, "", nullptr, wall);
    e.rule = std::string(self_test_rule);
    e.detail = fmt::format("self-test acknowledged by {} as {}, {:.1f} s after it was raised", by, a.verdict,
                           static_cast<double>(took.count()) / 1000.0);
    auto r =
        recovery(a, "", nullptr, wall, "self-test complete: the alarm reached the platform and came back");
    r.rule = e.rule;
    self_test_.reset();
    return {{}, {std::move(e), std::move(r)}};
  }
  for (auto& entry : devices_) {
    const std::string& device = entry.first;  // a lambda below uses it: clang 14 cannot capture bindings
    auto& d = entry.second;
    const auto ack = [&](rules::boxed<alarm_record>& a, const rule_state* s) -> outcome {
      if (!a->verdict.empty()) {
        return {fmt::format("alarm {} was already acknowledged by {} as {}", alarm_id, a->actor, a->verdict),
                {}};
      }
      a->verdict = to_string(v);
      a->actor = by;
      auto e = about(event_kind::alarm_acknowledged, *a, device, s, wall);
      e.detail = fmt::format("acknowledged by {} as {}: {}", by, a->verdict, a->detail);
      // A test alarm confirmed false is no false alarm of the unit.
      e.false_alarms_today = v == verdict::false_alarm && !a->test ? count_false_alarm(device, wall)
                                                                   : false_alarms_today(device, wall);
      if (e.false_alarms_today > policy_.false_alarm_limit) {
        e.detail += fmt::format(
            "; {} false alarms from this device today, over the {} a day that needs a "
            "handling plan with the centre",
            e.false_alarms_today, policy_.false_alarm_limit);
      }
      outcome out{{}, {std::move(e)}};
      if (!a->holds) {  // latched: its condition had cleared, the acknowledgement ends it
        out.events.push_back(recovery(
            *a, device, s, wall, fmt::format("acknowledged by {}; the condition had already cleared", by)));
        a.reset();
      }
      return out;
    };
    for (auto& s : d.rules) {
      if (s.alarm && (s.alarm->id == alarm_id || s.alarm->last_escalation_id == alarm_id))
        return ack(s.alarm, &s);
    }
    if (d.offline && d.offline->id == alarm_id) return ack(d.offline, nullptr);
    if (d.comm && d.comm->id == alarm_id) return ack(d.comm, nullptr);
  }
  return {fmt::format("no open alarm has id {}: it has cleared already or is not this gateway's", alarm_id),
          {}};
}

void alarm_engine::end_alarms(const std::string& device, device_state& d, bool test_only,
                              const std::string& why, clock::time_point wall, std::vector<event>& out) {
  for (auto& s : d.rules) {
    if (!s.alarm || (test_only && !s.alarm->test)) continue;
    out.push_back(recovery(*s.alarm, device, &s, wall, fmt::format("{}: {}", why, s.alarm->detail)));
    s.alarm.reset();
  }
  if (d.offline && (!test_only || d.offline->test)) {
    out.push_back(recovery(*d.offline, device, nullptr, wall, fmt::format("{}: {}", why, d.offline->detail)));
    d.offline.reset();
  }
  if (d.comm && (!test_only || d.comm->test)) {
    out.push_back(recovery(*d.comm, device, nullptr, wall, fmt::format("{}: {}", why, d.comm->detail)));
    out.back().rule = comm_quality_rule;
    d.comm.reset();
  }
}

void alarm_engine::raise_holding(const std::string& device, device_state& d, clock::time_point wall,
                                 mono::time_point now, std::vector<event>& out) {
  for (auto& s : d.rules) {
    if (!s.alarm && s.condition.active()) {
      on_change(rules::change::raised, s, device, d, s.condition.value(), "", wall, now, out);
    }
  }
  if (d.offline_now && !d.offline && !d.offline_by_bus) raise_offline(device, d, wall, now, out);
  if (d.comm_poor_now && !d.comm) raise_comm(device, d, wall, out);
}

alarm_engine::outcome alarm_engine::shield(const std::string& device, std::chrono::seconds length,
                                           const std::string& reason, const std::string& by,
                                           mono::time_point now, clock::time_point wall) {
  if (length > policy_.shield_max) {
    return {
        fmt::format("a shield of {} min is longer than this site allows ({} h, [alarms] shield_max_hours)",
                    std::chrono::duration_cast<std::chrono::minutes>(length).count(),
                    std::chrono::duration_cast<std::chrono::hours>(policy_.shield_max).count()),
        {}};
  }
  auto& d = devices_[device];
  if (d.shield) {
    return {fmt::format("{} is already shielded until {:%F %T} UTC by {}; unshield it first", device,
                        std::chrono::floor<std::chrono::seconds>(d.shield->until), d.shield->actor),
            {}};
  }
  outcome out;
  auto e = make_event(event_kind::device_shielded, device, wall);
  e.actor = by;
  e.until = wall + length;
  e.detail = fmt::format("shielded by {} for {} min: {}; its alarms are not raised until it is unshielded",
                         by, std::chrono::duration_cast<std::chrono::minutes>(length).count(), reason);
  d.shield = device_mode{e.id, now + length, *e.until, reason, by, e.time};
  out.events.push_back(std::move(e));
  end_alarms(device, d, false, fmt::format("ended: the device was shielded by {}", by), wall, out.events);
  return out;
}

void alarm_engine::end_shield(const std::string& device, device_state& d, const std::string& by,
                              clock::time_point wall, mono::time_point now, std::vector<event>& out) {
  auto e = make_event(event_kind::device_unshielded, device, wall);
  e.alarm_id = d.shield->id;
  e.actor = by;
  e.detail = by.empty() ? fmt::format("the shield set by {} ran out; its alarms count again", d.shield->actor)
                        : fmt::format("unshielded by {}; its alarms count again", by);
  d.shield.reset();
  out.push_back(std::move(e));
  raise_holding(device, d, wall, now, out);
}

alarm_engine::outcome alarm_engine::unshield(const std::string& device, const std::string& by,
                                             mono::time_point now, clock::time_point wall) {
  auto d = devices_.find(device);
  if (d == devices_.end() || !d->second.shield) return {fmt::format("{} is not shielded", device), {}};
  outcome out;
  end_shield(device, d->second, by, wall, now, out.events);
  return out;
}

void alarm_engine::end_test_mode(const std::string& device, device_state& d, const std::string& by,
                                 clock::time_point wall, mono::time_point now, std::vector<event>& out) {
  auto e = make_event(event_kind::test_mode_ended, device, wall);
  e.alarm_id = d.test->id;
  e.actor = by;
  e.detail = by.empty() ? fmt::format("test mode set by {} ran out; its alarms are real again", d.test->actor)
                        : fmt::format("test mode ended by {}; its alarms are real again", by);
  d.test.reset();
  out.push_back(std::move(e));
  end_alarms(device, d, true, "ended with test mode", wall, out);
  if (!d.shield) raise_holding(device, d, wall, now, out);
}

alarm_engine::outcome alarm_engine::set_test_mode(const std::string& device, bool on,
                                                  std::chrono::seconds length, const std::string& by,
                                                  mono::time_point now, clock::time_point wall) {
  auto& d = devices_[device];
  outcome out;
  if (!on) {
    if (!d.test) return {fmt::format("{} is not in test mode", device), {}};
    end_test_mode(device, d, by, wall, now, out.events);
    return out;
  }
  if (length > policy_.shield_max) {
    // Test mode silences a detector's linkage and escalation as a shield does: the same bound.
    return {
        fmt::format("a test mode of {} min is longer than this site allows ({} h, [alarms] shield_max_hours)",
                    std::chrono::duration_cast<std::chrono::minutes>(length).count(),
                    std::chrono::duration_cast<std::chrono::hours>(policy_.shield_max).count()),
        {}};
  }
  if (d.test) {
    return {fmt::format("{} is already in test mode until {:%F %T} UTC, set by {}", device,
                        std::chrono::floor<std::chrono::seconds>(d.test->until), d.test->actor),
            {}};
  }
  auto e = make_event(event_kind::test_mode_started, device, wall);
  e.actor = by;
  e.until = wall + length;
  e.detail = fmt::format("test mode set by {} for {} min: its alarms are marked test and not dispatched on",
                         by, std::chrono::duration_cast<std::chrono::minutes>(length).count());
  d.test = device_mode{e.id, now + length, *e.until, {}, by, e.time};
  out.events.push_back(std::move(e));
  return out;
}

std::vector<event> alarm_engine::restore(const std::vector<open_alarm>& open,
                                         const std::map<std::string, unsigned>& false_alarms_today,
                                         mono::time_point now, clock::time_point wall) {
  std::vector<event> out;
  for (const auto& [device, count] : false_alarms_today) false_alarms_[device] = {local_day(wall), count};
  // Shields and test modes first: they decide how the alarms behave.
  for (const auto& a : open) {
    if (a.kind != event_kind::device_shielded && a.kind != event_kind::test_mode_started) continue;
    auto& d = devices_[a.device];
    const auto until = a.until.value_or(wall);
    device_mode m{a.id,    now + std::chrono::duration_cast<mono::duration>(until - wall),
                  until,   a.detail,
                  a.actor, a.time};
    (a.kind == event_kind::device_shielded ? d.shield : d.test) = m;
  }
  for (const auto& a : open) {
    if (!is_alarm(a.kind)) continue;
    if (a.device.empty() && a.rule == self_test_rule) {  // waiting for its acknowledgement still
      self_test_ = alarm_record{a.id, a.kind,    a.time,  a.value, {}, a.detail, false,
                                true, a.verdict, a.actor, 0,       {}, {},       true};
      continue;
    }
    if (a.kind == event_kind::bus_offline) {
      // Ended by the bus's first answer (the driver says so on its first success).
      open_bus_fault(a.device, a.id, a.time, a.value, a.detail);
      continue;
    }
    auto& d = devices_[a.device];
    alarm_record record{a.id,
                        a.kind,
                        a.time,
                        a.value,
                        {},
                        a.detail,
                        true,
                        false,
                        a.verdict,
                        a.actor,
                        a.repeats,
                        {},
                        now + policy_.escalate_after,
                        a.test};
    if (a.kind == event_kind::device_offline) {
      d.offline = std::move(record);  // its first reading ends it (on_readings)
      continue;
    }
    if (a.kind == event_kind::device_fault && a.rule == comm_quality_rule) {
      d.comm = std::move(record);  // the driver's first full window of good polls ends it
      continue;
    }
    rule_state* state = nullptr;
    for (auto& s : d.rules) {
      if (s.rule->name == a.rule) state = &s;
    }
    if (state != nullptr && !state->alarm) {
      state->condition.restore_active(a.value);
      record.latch = state->rule->latch;
      state->alarm = std::move(record);
      continue;
    }
    // Its rule is gone (the configuration changed while stopped), or a second open alarm of one
    // rule (left by a crash between an alarm and its recovery): ended now, so none stays open.
    auto e = recovery(record, a.device, nullptr, wall,
                      state == nullptr ? "ended at start: its rule is no longer configured for this device"
                                       : "ended at start: a later alarm of the same rule is open");
    e.rule = a.rule;
    out.push_back(std::move(e));
  }
  // What ran out while the gateway was stopped ends now.
  auto ticked = on_tick(now, wall);
  out.insert(out.end(), std::make_move_iterator(ticked.begin()), std::make_move_iterator(ticked.end()));
  return out;
}

std::vector<open_alarm> alarm_engine::open_alarms() const {
  std::vector<open_alarm> out;
  const auto add = [&](const alarm_record& a, const std::string& device, const rule_state* s) {
    open_alarm o;
    o.id = a.id;
    o.kind = a.kind;
    o.device = device;
    if (s != nullptr) {
      o.rule = s->rule->name;
      o.point = s->rule->point;
    }
    o.value = a.value;
    o.time = a.first;
    o.detail = a.detail;
    o.verdict = a.verdict;
    o.actor = a.actor;
    o.repeats = a.repeats;
    o.test = a.test;
    out.push_back(std::move(o));
  };
  const auto add_mode = [&](const device_mode& m, event_kind kind, const std::string& device) {
    open_alarm o;
    o.id = m.id;
    o.kind = kind;
    o.device = device;
    o.detail = m.reason;
    o.actor = m.actor;
    o.test = kind == event_kind::test_mode_started;
    o.until = m.until;
    o.time = m.since;
    out.push_back(std::move(o));
  };
  for (const auto& [device, d] : devices_) {
    if (d.shield) add_mode(*d.shield, event_kind::device_shielded, device);
    if (d.test) add_mode(*d.test, event_kind::test_mode_started, device);
    if (d.offline) add(*d.offline, device, nullptr);
    if (d.comm) {
      add(*d.comm, device, nullptr);
      out.back().rule = comm_quality_rule;
    }
    for (const auto& s : d.rules) {
      if (s.alarm) add(*s.alarm, device, &s);
    }
  }
  if (self_test_) {
    add(*self_test_, "", nullptr);
    out.back().rule = std::string(self_test_rule);
  }
  for (const auto& [bus, a] : buses_) add(a, bus, nullptr);
  return out;
}

}  // namespace firegate
