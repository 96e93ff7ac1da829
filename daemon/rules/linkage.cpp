#include "linkage.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

namespace firegate {

namespace {

std::optional<alarm_category> category_of_alarm(event_kind kind) {
  switch (kind) {
    case event_kind::fire_alarm:
      return alarm_category::fire;
    case event_kind::supervisory_alarm:
      return alarm_category::supervisory;
    case event_kind::device_fault:
      return alarm_category::fault;
    default:
      return std::nullopt;
  }
}

std::string describe(const std::vector<linkage_outputs::holder>& hs) {
  std::vector<std::string> parts;
  for (const auto& h : hs)
    parts.push_back(fmt::format("{} of {} ({})", to_string(h.kind), h.device, h.alarm_id));
  return fmt::format("{}", fmt::join(parts, ", "));
}

}  // namespace

bool linkage_outputs::matches(const config::linkage_config& l, const open_alarm& a) {
  if (a.test) return false;  // a detector under maintenance must not trip a breaker
  const auto category = category_of_alarm(a.kind);
  if (!category || *category != l.on) return false;
  if (!l.rule.empty() && l.rule != a.rule) return false;
  return l.devices.empty() || std::find(l.devices.begin(), l.devices.end(), a.device) != l.devices.end();
}

std::map<linkage_outputs::key, linkage_outputs::output> linkage_outputs::compute(
    const std::vector<config::linkage_config>& linkages, const std::vector<open_alarm>& open) {
  std::map<key, output> out;
  for (const auto& l : linkages) {
    std::vector<holder> mine;
    for (const auto& a : open) {
      if (matches(l, a)) mine.push_back({a.id, a.device, a.rule, a.kind});
    }
    if (mine.empty()) continue;
    auto [it, fresh] = out.try_emplace(key{l.device, l.write});
    auto& o = it->second;
    // The first linkage in the file that holds the output gives its value.
    if (fresh) o.value = l.value;
    if (!o.reset_value) o.reset_value = l.reset_value;
    o.linkages.push_back(l.name);
    for (auto& h : mine) {
      if (std::none_of(o.holders.begin(), o.holders.end(),
                       [&](const holder& x) { return x.alarm_id == h.alarm_id; }))
        o.holders.push_back(std::move(h));
    }
  }
  return out;
}

std::vector<linkage_outputs::action> linkage_outputs::update(
    const std::vector<config::linkage_config>& linkages, const std::vector<open_alarm>& open,
    const event* cause) {
  auto next = compute(linkages, open);
  std::vector<action> out;
  for (auto& [k, o] : next) {
    auto was = held_.find(k);
    if (was != held_.end() && was->second.value == o.value) {
      // Still held. It is asserted again (read first, written only if it differs) when a new alarm
      // joins its holders, when one of them escalates (an unacknowledged fire raised again may find
      // the sounder switched off by hand), and when its last write failed or it was switched by hand.
      o.in_doubt = was->second.in_doubt;
      o.forced = was->second.forced;
      const auto& holders = o.holders;  // a lambda may not capture a structured binding (clang 14)
      const auto holds = [&](const std::string& id) {
        return std::any_of(holders.begin(), holders.end(), [&](const holder& h) { return h.alarm_id == id; });
      };
      std::string why;
      std::string alarm_id;
      if (cause && cause->kind == event_kind::alarm_escalation && holds(cause->alarm_id)) {
        alarm_id = cause->alarm_id;
        why = fmt::format("re-asserted on the escalation of {}", cause->alarm_id);
      } else if (cause && is_alarm(cause->kind) && holds(cause->id)) {
        alarm_id = cause->id;
        why = fmt::format("re-asserted as {} of {} joins it", to_string(cause->kind), cause->device);
      } else if (o.in_doubt) {
        alarm_id = o.holders.front().alarm_id;
        why = "re-asserted: its last write failed";
      }
      if (!why.empty()) {
        out.push_back({k.first, k.second, o.value, true, false, false, o.linkages, alarm_id,
                       fmt::format("linkage {} {} ({} open: {})", fmt::join(o.linkages, ", "), why,
                                   o.holders.size(), describe(o.holders))});
      }
      continue;
    }
    // Newly held (or held at another value): the cause when it holds it, else the first holder.
    std::string alarm_id = o.holders.front().alarm_id;
    if (cause && std::any_of(o.holders.begin(), o.holders.end(),
                             [&](const holder& h) { return h.alarm_id == cause->id; }))
      alarm_id = cause->id;
    out.push_back({k.first, k.second, o.value, false, false, false, o.linkages, alarm_id,
                   fmt::format("linkage {} on {}", fmt::join(o.linkages, ", "), describe(o.holders))});
  }
  for (const auto& [k, o] : held_) {
    if (next.contains(k) || !o.reset_value) continue;
    // The last alarm holding it has ended.
    const auto alarm_id = cause && !cause->alarm_id.empty() ? cause->alarm_id : o.holders.back().alarm_id;
    out.push_back({k.first, k.second, *o.reset_value, false, true, false, o.linkages, alarm_id,
                   fmt::format("linkage {} released: the last alarm holding it ended ({})",
                               fmt::join(o.linkages, ", "), describe(o.holders))});
  }
  held_ = std::move(next);
  return out;
}

std::vector<linkage_outputs::action> linkage_outputs::restore(
    const std::vector<config::linkage_config>& linkages, const std::vector<open_alarm>& open) {
  held_ = compute(linkages, open);
  std::vector<action> out;
  for (const auto& [k, o] : held_) {
    out.push_back({k.first, k.second, o.value, true, false, true, o.linkages, o.holders.front().alarm_id,
                   fmt::format("linkage {} restored at start on {}", fmt::join(o.linkages, ", "),
                               describe(o.holders))});
  }
  // An output no open alarm holds is released, in case the gateway stopped between a recovery and
  // its reset.
  std::map<key, action> released;
  for (const auto& l : linkages) {
    const key k{l.device, l.write};
    if (held_.contains(k) || !l.reset_value) continue;
    auto [it, fresh] =
        released.try_emplace(k, action{l.device, l.write, *l.reset_value, true, true, true, {}, {}, {}});
    it->second.linkages.push_back(l.name);
  }
  for (auto& [k, a] : released) {
    a.why = fmt::format("linkage {} released at start: no open alarm holds it", fmt::join(a.linkages, ", "));
    out.push_back(std::move(a));
  }
  return out;
}

bool linkage_outputs::written(const std::string& device, const std::string& write, double value, bool ok) {
  auto it = held_.find(key{device, write});
  if (it == held_.end()) return false;
  auto& o = it->second;
  const bool was = o.in_doubt;
  if (std::isnan(value)) {
    o.forced = true;
  } else if (value == o.value) {
    o.in_doubt = !ok;
    if (ok) o.forced = false;
  }
  return was;
}

std::vector<linkage_outputs::holder> linkage_outputs::holders(const std::string& device,
                                                              const std::string& write) const {
  auto it = held_.find(key{device, write});
  return it == held_.end() ? std::vector<holder>{} : it->second.holders;
}

}  // namespace firegate
