#include "alarm_engine.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

namespace firegate {

using rules::change;
using rules::mono;

alarm_engine::alarm_engine(std::vector<device_rules> devices, std::function<std::string()> new_id,
                           alarm_policy policy)
    : new_id_(std::move(new_id)), policy_(policy) {
  reconfigure(std::move(devices), policy, clock::now());
}

std::vector<event> alarm_engine::reconfigure(std::vector<device_rules> devices, alarm_policy policy,
                                             clock::time_point wall) {
  policy_ = policy;
  std::vector<event> out;
  // Device-level state (offline, shields, test modes) stays; the rules are replaced.
  std::map<std::string, std::vector<rule_state>, std::less<>> next;
  for (auto& d : devices) {
    auto& states = next[d.device];
    auto old = devices_.find(d.device);
    for (const auto& r : *d.rules) {
      if (!r.enabled) continue;
      // Held through the device's rule list, which devices of one profile without overrides share:
      // one copy of a rule for all of them, not one a device.
      auto rule = std::shared_ptr<const alarm_rule>(d.rules, &r);
      auto spec = std::shared_ptr<const condition_spec>(d.rules, &r.condition);
      rule_state* kept = nullptr;
      if (old != devices_.end()) {
        for (auto& s : old->second.rules) {
          if (s.rule && *s.rule == r) kept = &s;
        }
      }
      if (kept) {
        states.push_back(std::move(*kept));
        kept->rule.reset();  // moved: not to be recovered below
        states.back().rule = std::move(rule);
        states.back().condition.rebind(std::move(spec));
      } else {
        states.push_back({std::move(rule), rules::condition(std::move(spec)), std::nullopt, {}});
      }
    }
  }
  // Alarms whose rule changed or went: recovered, so that none stays open with nothing to end it.
  for (auto& [device, d] : devices_) {
    for (auto& s : d.rules) {
      if (!s.rule || !s.alarm) continue;
      out.push_back(recovery(*s.alarm, device, &s, wall,
                             fmt::format("{}: ended because its rule was changed or removed by a reload",
                                         s.rule->text.empty() ? s.rule->name : s.rule->text)));
    }
    d.rules.clear();
  }
  for (auto& [device, states] : next) devices_[device].rules = std::move(states);
  return out;
}

event alarm_engine::make_event(event_kind kind, const std::string& device, clock::time_point time) {
  event e;
  e.id = new_id_();
  e.kind = kind;
  e.device = device;
  e.time = time;
  return e;
}

event alarm_engine::alarm_event(const rule_state& s, const std::string& device, const device_state& d,
                                double value, const std::string& unit, clock::time_point time) {
  const auto kind = s.rule->category == alarm_category::fire          ? event_kind::fire_alarm
                    : s.rule->category == alarm_category::supervisory ? event_kind::supervisory_alarm
                                                                      : event_kind::device_fault;
  auto e = make_event(kind, device, time);
  e.point = s.rule->point;
  e.value = value;
  e.evidence = s.evidence;
  e.unit = unit;
  e.rule = s.rule->name;
  e.device_code = s.rule->code;
  e.test = d.test.has_value();
  e.false_alarms_today = false_alarms_today(device, time);
  const auto& c = s.rule->condition;
  if (c.kind == condition_kind::high || c.kind == condition_kind::low) e.threshold = c.set;
  if (c.kind == condition_kind::rate_of_rise) e.threshold = c.per_minute;
  const auto text =
      s.rule->text.empty() ? fmt::format("{} {}", s.rule->point, to_string(c.kind)) : s.rule->text;
  if (c.kind == condition_kind::high || c.kind == condition_kind::low) {
    e.detail = fmt::format("{}: {} {} (setting {} {})", text, value, unit, c.set, unit);
  } else if (c.kind == condition_kind::rate_of_rise) {
    e.detail =
        fmt::format("{}: rising {:.1f} {} a minute (setting {} a minute)", text, value, unit, c.per_minute);
  } else {
    e.detail = text;
  }
  return e;
}

event alarm_engine::about(event_kind kind, const alarm_record& a, const std::string& device,
                          const rule_state* s, clock::time_point time) {
  auto e = make_event(kind, device, time);
  if (s != nullptr) {
    e.point = s->rule->point;
    e.rule = s->rule->name;
    e.device_code = s->rule->code;
  }
  e.value = a.value;
  e.unit = a.unit;
  e.alarm_id = a.id;
  e.first_time = a.first;
  e.verdict = a.verdict;
  e.actor = a.actor;
  e.test = a.test;
  return e;
}

event alarm_engine::recovery(const alarm_record& a, const std::string& device, const rule_state* s,
                             clock::time_point time, std::string detail) {
  auto e = about(recovery_of(a.kind), a, device, s, time);
  e.detail = std::move(detail);
  return e;
}

void alarm_engine::on_change(change ch, rule_state& s, const std::string& device, device_state& d,
                             double value, const std::string& unit, clock::time_point time,
                             mono::time_point now, std::vector<event>& out) {
  // A shielded device's conditions are still followed, so that what holds when the shield ends is
  // raised then; nothing is raised meanwhile.
  if (ch == change::none || d.shield) return;
  if (ch == change::raised) {
    if (s.alarm) {  // latched and not yet acknowledged: the same alarm, holding again
      s.alarm->holds = true;
      s.alarm->value = value;
      return;
    }
    auto e = alarm_event(s, device, d, value, unit, time);
    s.alarm = alarm_record{e.id,
                           e.kind,
                           time,
                           value,
                           unit,
                           e.detail,
                           true,
                           s.rule->latch,
                           {},
                           {},
                           0,
                           {},
                           now + policy_.escalate_after,
                           e.test};
    out.push_back(std::move(e));
    return;
  }
  if (!s.alarm) return;
  s.alarm->holds = false;
  s.alarm->value = value;                                  // its recovery reports the value that ended it
  if (s.alarm->latch && s.alarm->verdict.empty()) return;  // stays until a person acknowledges it
  const auto text = s.rule->text.empty() ? s.rule->name : s.rule->text;
  out.push_back(recovery(*s.alarm, device, &s, time, fmt::format("back to normal: {}", text)));
  s.alarm.reset();
}

std::vector<event> alarm_engine::on_readings(std::span<const reading> readings, mono::time_point now) {
  std::vector<event> out;
  for (const auto& r : readings) {
    auto d = devices_.find(r.device);
    if (d == devices_.end()) continue;
    auto& dev = d->second;
    // A reading means the device answers. One offline at the last stop ends its fault here (the
    // driver reports only changes, and to it the device was never offline).
    dev.offline_now = false;
    dev.offline_by_bus = false;
    if (dev.offline) {
      out.push_back(recovery(*dev.offline, r.device, nullptr, r.time, "answering again"));
      dev.offline.reset();
    }
    for (auto& s : dev.rules) {
      if (s.rule->point != r.point) continue;
      // The rule's evidence as this poll read it: what an alarm it raises now, or later (a delay
      // completing between polls, a shield ending, an escalation), carries.
      if (!s.rule->evidence.empty()) {
        s.evidence.clear();
        for (const auto& name : s.rule->evidence) {
          for (const auto& x : readings) {
            if (x.device == r.device && x.point == name && x.q == quality::good)
              s.evidence.push_back({x.point, x.value, x.unit, {}});
          }
        }
      }
      const auto ch = s.condition.on_sample(r.value, r.q, now);
      on_change(ch, s, r.device, dev, s.condition.value(), r.unit, r.time, now, out);
    }
  }
  return out;
}

void alarm_engine::escalate(alarm_record& a, const std::string& device, const rule_state* s,
                            mono::time_point now, clock::time_point wall, std::vector<event>& out) {
  ++a.repeats;
  a.next_escalation = now + policy_.escalate_after;
  auto e = about(event_kind::alarm_escalation, a, device, s, wall);
  e.repeat = a.repeats;
  if (s != nullptr) e.evidence = s->evidence;  // as last read
  e.false_alarms_today = false_alarms_today(device, wall);
  const auto minutes = std::chrono::duration_cast<std::chrono::minutes>(wall - a.first).count();
  e.detail = fmt::format("not acknowledged after {} min (raised again, {} time{}): {}", minutes, a.repeats,
                         a.repeats == 1 ? "" : "s", a.detail);
  a.last_escalation_id = e.id;
  out.push_back(std::move(e));
}

std::vector<event> alarm_engine::on_tick(mono::time_point now, clock::time_point wall) {
  std::vector<event> out;
  for (auto& [device, d] : devices_) {
    if (d.shield && now >= d.shield->ends) end_shield(device, d, "", wall, now, out);
    if (d.test && now >= d.test->ends) end_test_mode(device, d, "", wall, now, out);
    for (auto& s : d.rules) {
      on_change(s.condition.on_tick(now), s, device, d, s.condition.value(), "", wall, now, out);
      auto& a = s.alarm;
      if (a && a->kind == event_kind::fire_alarm && a->verdict.empty() && !a->test &&
          policy_.escalate_after.count() > 0 && now >= a->next_escalation) {
        escalate(*a, device, &s, now, wall, out);
      }
    }
  }
  return out;
}

void alarm_engine::raise_comm(const std::string& device, device_state& d, clock::time_point time,
                              std::vector<event>& out) {
  auto e = make_event(event_kind::device_fault, device, time);
  e.rule = comm_quality_rule;
  e.detail = fmt::format(
      "answers, but mostly badly: {}; readings and alarms of this device are being lost; check the "
      "line's wiring, termination and earthing, a second master on the line, or a gateway sending "
      "extra bytes",
      d.comm_detail);
  e.test = d.test.has_value();
  d.comm = alarm_record{e.id, e.kind, time, 0, {}, e.detail, true, false, {}, {}, 0, {}, {}, e.test};
  out.push_back(std::move(e));
}

void alarm_engine::raise_offline(const std::string& device, device_state& d, clock::time_point time,
                                 mono::time_point now, std::vector<event>& out) {
  auto e = make_event(event_kind::device_offline, device, time);
  e.detail = d.offline_detail;
  e.test = d.test.has_value();
  d.offline = alarm_record{e.id, e.kind, time, 0, {}, e.detail, true, false, {}, {}, 0, {}, now, e.test};
  out.push_back(std::move(e));
}

std::vector<event> alarm_engine::on_device_status(const device_status& status, mono::time_point now) {
  std::vector<event> out;
  auto& d = devices_[status.device];
  d.offline_now = !status.online;
  d.offline_by_bus = !status.online && status.by_bus;
  if (!status.online) {
    d.offline_detail = fmt::format("no answer from {}: {}", status.detail, status.error.message());
    if (!d.offline && !d.shield && !d.offline_by_bus) raise_offline(status.device, d, status.time, now, out);
  } else if (d.offline) {
    out.push_back(recovery(*d.offline, status.device, nullptr, status.time,
                           fmt::format("answering again at {}", status.detail)));
    d.offline.reset();
  }
  return out;
}

std::vector<event> alarm_engine::on_device_quality(const device_quality& quality) {
  std::vector<event> out;
  auto& d = devices_[quality.device];
  // Kept as the driver said it, so that a shield or test mode ending raises what still holds (the
  // driver tells changes only).
  d.comm_poor_now = quality.poor;
  d.comm_detail = quality.detail;
  if (quality.poor) {
    if (!d.comm && !d.shield) raise_comm(quality.device, d, quality.time, out);
  } else if (d.comm) {
    auto e = recovery(*d.comm, quality.device, nullptr, quality.time,
                      fmt::format("answers well again: {}", quality.detail));
    e.rule = comm_quality_rule;
    d.comm.reset();
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<event> alarm_engine::on_bus_status(const bus_status& status) {
  std::vector<event> out;
  auto it = buses_.find(status.bus);
  if (!status.online) {
    if (it != buses_.end()) return out;  // still down: one fault for the whole outage
    auto e = make_event(event_kind::bus_offline, status.bus, status.time);
    e.value = static_cast<double>(status.devices.size());
    e.detail = fmt::format(
        "bus {} at {}: {}; the {} device{} behind it ({}) cannot be reached and raise no alert of their "
        "own; check {}",
        status.bus, status.address, status.failed, status.devices.size(),
        status.devices.size() == 1 ? "" : "s", fmt::join(status.devices, ", "),
        !status.check.empty() ? status.check
        : status.address.starts_with("/")
            ? "the serial adapter, the RS-485 cable (A/B wiring, termination) and the line's power"
            : "the Modbus gateway or server's power and network cable, its address and port");
    e.bus = bus_info{status.address, status.failed, status.devices};
    open_bus_fault(status.bus, e.id, status.time, e.value, e.detail);
    out.push_back(std::move(e));
  } else if (it != buses_.end()) {
    auto e = recovery(it->second, status.bus, nullptr, status.time,
                      fmt::format("bus {} at {} answers again; a device behind it that stays silent raises "
                                  "its own device_offline",
                                  status.bus, status.address));
    e.bus = bus_info{status.address, {}, status.devices};
    buses_.erase(it);
    out.push_back(std::move(e));
  }
  return out;
}

void alarm_engine::open_bus_fault(const std::string& bus, std::string id, clock::time_point first,
                                  double devices, std::string detail) {
  alarm_record r;
  r.id = std::move(id);
  r.kind = event_kind::bus_offline;
  r.first = first;
  r.value = devices;
  r.detail = std::move(detail);
  buses_.emplace(bus, std::move(r));
}

std::vector<event> alarm_engine::end_bus_faults_except(const std::vector<std::string>& buses,
                                                       clock::time_point wall) {
  std::vector<event> out;
  for (auto it = buses_.begin(); it != buses_.end();) {
    if (std::find(buses.begin(), buses.end(), it->first) != buses.end()) {
      ++it;
      continue;
    }
    out.push_back(recovery(it->second, it->first, nullptr, wall,
                           fmt::format("bus {} is no longer in the configuration", it->first)));
    it = buses_.erase(it);
  }
  return out;
}

std::size_t alarm_engine::active_fires() const {
  std::size_t n = 0;
  for (const auto& [device, d] : devices_) {
    for (const auto& s : d.rules)
      n += s.alarm && s.alarm->kind == event_kind::fire_alarm && !s.alarm->test ? 1 : 0;
  }
  return n;
}

alarm_engine::counts alarm_engine::count() const {
  counts c;
  const auto add = [&c](const alarm_record& a) {
    if (a.test) {
      ++c.test;
      return;
    }
    if (a.kind == event_kind::fire_alarm || a.kind == event_kind::supervisory_alarm) {
      ++(a.kind == event_kind::fire_alarm ? c.fire : c.supervisory);
      if (a.verdict.empty()) ++c.unacknowledged;
    } else {
      ++c.fault;
    }
  };
  for (const auto& [device, d] : devices_) {
    for (const auto& s : d.rules) {
      if (s.alarm) add(*s.alarm);
    }
    if (d.offline) add(*d.offline);
    if (d.comm) add(*d.comm);
    c.shielded += d.shield ? 1 : 0;
    c.in_test_mode += d.test ? 1 : 0;
  }
  if (self_test_) add(*self_test_);
  for (const auto& [bus, a] : buses_) add(a);
  return c;
}

}  // namespace firegate
