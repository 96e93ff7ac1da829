#include "app/alarm_lookup.hpp"

#include "domain/time_text.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>

namespace firegate {
namespace {

/// The alarm a stored event belongs to, and whether `given` names that alarm through this event:
/// an alarm's own id, an escalation's id, or (for its acknowledgement and its end) the alarm id it
/// carries. Other events (shields, linkage, writes) name no alarm here.
std::string alarm_of(const event& e, std::string_view given) {
  if (is_alarm(e.kind)) return std::string_view(e.id).starts_with(given) ? e.id : std::string();
  if (e.alarm_id.empty()) return {};
  if (e.kind == event_kind::alarm_escalation)
    return std::string_view(e.id).starts_with(given) || std::string_view(e.alarm_id).starts_with(given)
               ? e.alarm_id
               : std::string();
  // An acknowledgement, or the end of an alarm (recovery_of an alarm kind; not config_applied or
  // storage_recovery, which end faults the engine does not keep as alarms).
  bool names_alarm = e.kind == event_kind::alarm_acknowledged;
  for (int k = 0; !names_alarm && k <= static_cast<int>(last_event_kind); ++k) {
    const auto kind = static_cast<event_kind>(k);
    names_alarm = is_alarm(kind) && recovery_of(kind) == e.kind;
  }
  if (!names_alarm) return {};
  return std::string_view(e.alarm_id).starts_with(given) ? e.alarm_id : std::string();
}

std::string open_text(const open_alarm& a) {
  return fmt::format("{} ({} on {} since {}, open)", a.id, to_string(a.kind), a.device, iso8601(a.time));
}

}  // namespace

std::string alarm_id_problem(std::string_view given) {
  if (given.size() < alarm_id_prefix_min) {
    return fmt::format(
        "\"{}\" is too short to name an alarm: give at least {} characters of its id (firegatectl alarms "
        "shows the first {})",
        given, alarm_id_prefix_min, alarm_id_short);
  }
  const bool id_like = std::all_of(given.begin(), given.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f') || c == '-';
  });
  if (!id_like) {
    return fmt::format(
        "\"{}\" is not an alarm id: ids are lower-case hexadecimal with dashes, as firegatectl alarms shows "
        "them",
        given);
  }
  return {};
}

const open_alarm* open_alarm_exactly(const std::vector<open_alarm>& open, std::string_view given) {
  for (const auto& a : open) {
    if (is_alarm(a.kind) && a.id == given) return &a;
  }
  return nullptr;
}

ack_target resolve_ack(std::string_view given, const std::vector<open_alarm>& open,
                       const std::vector<event>& stored) {
  // Every alarm the prefix could name, open or past, with the stored events of each.
  std::map<std::string, std::vector<const event*>> named;
  for (const auto& e : stored) {
    if (auto alarm = alarm_of(e, given); !alarm.empty()) named[alarm].push_back(&e);
  }
  std::map<std::string, const open_alarm*> open_named;
  for (const auto& a : open) {
    if (!is_alarm(a.kind)) continue;  // a shield or a test mode is lifted, not acknowledged
    if (std::string_view(a.id).starts_with(given) || named.contains(a.id)) open_named[a.id] = &a;
  }
  for (const auto& [id, a] : open_named) named[id];  // open before anything was stored of it
  if (named.empty()) {
    return {
        {},
        "unknown",
        fmt::format("no alarm on this gateway has an id starting \"{}\": firegatectl alarms lists the open "
                    "ones, firegatectl alarms --history the stored ones",
                    given)};
  }
  if (named.size() > 1) {
    std::string list;
    for (const auto& [id, events] : named) {
      const auto it = open_named.find(id);
      list += (list.empty() ? "" : ", ") + (it != open_named.end() ? open_text(*it->second) : id + " (past)");
    }
    return {
        {},
        "ambiguous",
        fmt::format("\"{}\" starts the id of {} alarms: {}; give more of the id", given, named.size(), list)};
  }
  const auto& [id, events] = *named.begin();
  if (const auto it = open_named.find(id); it != open_named.end()) {
    if (it->second->kind == event_kind::bus_offline) {
      return {{},
              "not_acknowledged",
              fmt::format(
                  "alarm {} is a bus fault ({}): it is not acknowledged; it ends when the bus answers again",
                  id, it->second->device)};
    }
    return {id, {}, {}};
  }
  const auto raised =
      std::find_if(events.begin(), events.end(), [](const event* e) { return is_alarm(e->kind); });
  const std::string what = raised != events.end()
                               ? fmt::format("{} on {}", to_string((*raised)->kind), (*raised)->device)
                               : "alarm";
  const auto acked = std::find_if(events.begin(), events.end(),
                                  [](const event* e) { return e->kind == event_kind::alarm_acknowledged; });
  if (acked != events.end()) {
    return {{},
            "acknowledged",
            fmt::format("alarm {} ({}) was acknowledged already, by {} as {} at {}", id, what,
                        (*acked)->actor, (*acked)->verdict, iso8601((*acked)->time))};
  }
  const auto ended = std::find_if(events.begin(), events.end(),
                                  [](const event* e) { return category_of(e->kind) == "recovery"; });
  return {
      {},
      "cleared",
      ended != events.end()
          ? fmt::format("alarm {} ({}) cleared at {} without an acknowledgement: there is nothing left to "
                        "acknowledge (firegatectl alarms --history keeps it)",
                        id, what, iso8601((*ended)->time))
          : fmt::format("alarm {} ({}) is no longer open", id, what)};
}

}  // namespace firegate
