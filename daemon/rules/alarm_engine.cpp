#include "alarm_engine.hpp"

#include <fmt/format.h>

namespace firegate {

using rules::alarm_category;
using rules::change;
using rules::condition_kind;

alarm_engine::alarm_engine(std::vector<device_rules> devices, std::function<std::string()> new_id)
    : new_id_(std::move(new_id)) {
  reconfigure(std::move(devices), clock::now());
}

std::vector<event> alarm_engine::reconfigure(std::vector<device_rules> devices, clock::time_point wall) {
  std::vector<event> out;
  std::map<std::string, std::vector<rule_state>, std::less<>> next;
  for (auto& d : devices) {
    auto& states = next[d.device];
    auto old = devices_.find(d.device);
    for (auto& r : d.rules) {
      if (!r.enabled) continue;
      rule_state* kept = nullptr;
      if (old != devices_.end()) {
        for (auto& s : old->second) {
          if (s.rule == r) kept = &s;
        }
      }
      if (kept) {
        states.push_back(std::move(*kept));
        kept->rule.name.clear();  // moved: not to be recovered below
      } else {
        states.push_back({r, rules::condition(r.condition), {}});
      }
    }
  }
  // Alarms whose rule changed or went: recovered, so that none stays open with nothing to end it.
  for (auto& [device, states] : devices_) {
    for (auto& s : states) {
      if (s.rule.name.empty() || s.active_id.empty()) continue;
      auto e = make(s, false, device, s.condition.value(), "", wall);
      e.detail = fmt::format("{}: ended because its rule was changed or removed by a reload", s.rule.text);
      out.push_back(std::move(e));
    }
  }
  devices_ = std::move(next);
  return out;
}

event alarm_engine::make(const rule_state& s, bool raised, const std::string& device, double value,
                         const std::string& unit, clock::time_point time) {
  event e;
  e.id = new_id_();
  switch (s.rule.category) {
    case alarm_category::fire:
      e.kind = raised ? event_kind::fire_alarm : event_kind::fire_recovery;
      break;
    case alarm_category::supervisory:
      e.kind = raised ? event_kind::supervisory_alarm : event_kind::supervisory_recovery;
      break;
    case alarm_category::fault:
      e.kind = raised ? event_kind::device_fault : event_kind::device_fault_recovery;
      break;
  }
  e.device = device;
  e.point = s.rule.point;
  e.value = value;
  e.unit = unit;
  e.time = time;
  e.rule = s.rule.name;
  const auto& c = s.rule.condition;
  if (c.kind == condition_kind::high || c.kind == condition_kind::low) e.threshold = c.set;
  if (c.kind == condition_kind::rate_of_rise) e.threshold = c.per_minute;
  const auto text =
      s.rule.text.empty() ? fmt::format("{} {}", s.rule.point, rules::to_string(c.kind)) : s.rule.text;
  if (!raised) {
    e.alarm_id = s.active_id;
    e.detail = fmt::format("back to normal: {}", text);
  } else if (c.kind == condition_kind::high || c.kind == condition_kind::low) {
    e.detail = fmt::format("{}: {} {} (setting {} {})", text, value, unit, c.set, unit);
  } else if (c.kind == condition_kind::rate_of_rise) {
    e.detail =
        fmt::format("{}: rising {:.1f} {} a minute (setting {} a minute)", text, value, unit, c.per_minute);
  } else {
    e.detail = text;
  }
  return e;
}

void alarm_engine::on_change(change ch, rule_state& s, const std::string& device, double value,
                             const std::string& unit, clock::time_point time, std::vector<event>& out) {
  if (ch == change::none) return;
  auto e = make(s, ch == change::raised, device, value, unit, time);
  s.active_id = ch == change::raised ? e.id : std::string();
  out.push_back(std::move(e));
}

std::vector<event> alarm_engine::on_readings(std::span<const reading> readings, rules::mono::time_point now) {
  std::vector<event> out;
  for (const auto& r : readings) {
    // A device offline at the last stop that answers now: its fault ends (the driver reports only
    // changes, and to it the device was never offline).
    if (!offline_.empty()) {
      if (auto off = offline_.find(r.device); off != offline_.end()) {
        out.push_back(back_online(off, r.time, "answering again"));
      }
    }
    auto d = devices_.find(r.device);
    if (d == devices_.end()) continue;
    for (auto& s : d->second) {
      if (s.rule.point != r.point) continue;
      const auto ch = s.condition.on_sample(r.value, r.q, now);
      on_change(ch, s, r.device, s.condition.value(), r.unit, r.time, out);
    }
  }
  return out;
}

std::vector<event> alarm_engine::on_tick(rules::mono::time_point now, clock::time_point wall) {
  std::vector<event> out;
  for (auto& [device, states] : devices_) {
    for (auto& s : states) on_change(s.condition.on_tick(now), s, device, s.condition.value(), "", wall, out);
  }
  return out;
}

std::vector<event> alarm_engine::on_device_status(const device_status& status) {
  std::vector<event> out;
  auto active = offline_.find(status.device);
  if (!status.online && active == offline_.end()) {
    event e;
    e.id = new_id_();
    e.kind = event_kind::device_offline;
    e.device = status.device;
    e.time = status.time;
    e.detail = fmt::format("no answer from {}: {}", status.detail, status.error.message());
    offline_.emplace(status.device, e.id);
    out.push_back(std::move(e));
  } else if (status.online && active != offline_.end()) {
    out.push_back(back_online(active, status.time, fmt::format("answering again at {}", status.detail)));
  }
  return out;
}

event alarm_engine::back_online(std::map<std::string, std::string>::iterator offline, clock::time_point time,
                                std::string detail) {
  event e;
  e.id = new_id_();
  e.kind = event_kind::device_online;
  e.device = offline->first;
  e.time = time;
  e.alarm_id = offline->second;
  e.detail = std::move(detail);
  offline_.erase(offline);
  return e;
}

std::vector<event> alarm_engine::restore(const std::vector<open_alarm>& open, clock::time_point wall) {
  std::vector<event> out;
  for (const auto& a : open) {
    if (a.kind == event_kind::device_offline) {
      offline_[a.device] = a.id;  // its first reading ends it (on_readings)
      continue;
    }
    rule_state* state = nullptr;
    if (auto d = devices_.find(a.device); d != devices_.end()) {
      for (auto& s : d->second) {
        if (s.rule.name == a.rule) state = &s;
      }
    }
    if (state != nullptr && state->active_id.empty()) {
      state->condition.restore_active(a.value);
      state->active_id = a.id;
      continue;
    }
    // Its rule is gone (the configuration changed while stopped), or a second open alarm of one
    // rule (left by a crash between an alarm and its recovery): ended now, so none stays open.
    event e;
    e.id = new_id_();
    e.kind = a.kind == event_kind::fire_alarm          ? event_kind::fire_recovery
             : a.kind == event_kind::supervisory_alarm ? event_kind::supervisory_recovery
                                                       : event_kind::device_fault_recovery;
    e.device = a.device;
    e.rule = a.rule;
    e.value = a.value;
    e.time = wall;
    e.alarm_id = a.id;
    e.detail = state == nullptr ? "ended at start: its rule is no longer configured for this device"
                                : "ended at start: a later alarm of the same rule is open";
    out.push_back(std::move(e));
  }
  return out;
}

std::size_t alarm_engine::active_fires() const {
  std::size_t n = 0;
  for (const auto& [device, states] : devices_) {
    for (const auto& s : states) n += !s.active_id.empty() && s.rule.category == alarm_category::fire ? 1 : 0;
  }
  return n;
}

}  // namespace firegate
