#include "app/alarm_lookup.hpp"

#include "domain/time_text.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace firegate {

std::string alarm_id_problem(std::string_view given) {
  if (given.size() < alarm_id_prefix_min) {
    return fmt::format(
        "\"{}\" is too short to name an alarm: give at least {} characters of its id (firegatectl alarms "
        "shows the first {})",
        given, alarm_id_prefix_min, alarm_id_short);
  }
  const bool id_like = std::all_of(given.begin(), given.end(), [](char c) {
    return std::isxdigit(static_cast<unsigned char>(c)) || c == '-';
  });
  if (!id_like) {
    return fmt::format(
        "\"{}\" is not an alarm id: ids are hexadecimal with dashes, as firegatectl alarms shows them",
        given);
  }
  return {};
}

std::vector<open_alarm> open_alarms_matching(const std::vector<open_alarm>& open, std::string_view given) {
  std::vector<open_alarm> out;
  for (const auto& a : open) {
    if (!is_alarm(a.kind)) continue;  // a shield or a test mode is lifted, not acknowledged
    if (a.id == given) return {a};
    if (std::string_view(a.id).starts_with(given)) out.push_back(a);
  }
  return out;
}

std::string ambiguous_open_alarms(std::string_view given, const std::vector<open_alarm>& matching) {
  std::string list;
  for (const auto& a : matching) {
    list += fmt::format("{}{} ({} on {} since {})", list.empty() ? "" : ", ", a.id, to_string(a.kind),
                        a.device, iso8601(a.time));
  }
  return fmt::format("\"{}\" starts the id of {} open alarms: {}; give more of the id", given,
                     matching.size(), list);
}

past_alarm explain_past_alarm(std::string_view given, const std::vector<event>& stored) {
  // Each stored event belongs to one alarm: its own id when it raised one, else the alarm it names.
  std::map<std::string, std::vector<const event*>> by_alarm;
  for (const auto& e : stored) {
    const auto& alarm = is_alarm(e.kind) || e.alarm_id.empty() ? e.id : e.alarm_id;
    if (std::string_view(alarm).starts_with(given) || std::string_view(e.id).starts_with(given))
      by_alarm[alarm].push_back(&e);
  }
  if (by_alarm.empty()) {
    return {
        "unknown",
        fmt::format("no alarm on this gateway has an id starting \"{}\": firegatectl alarms lists the open "
                    "ones, firegatectl alarms --history the stored ones",
                    given),
        {}};
  }
  if (by_alarm.size() > 1) {
    std::string list;
    for (const auto& [id, events] : by_alarm) list += fmt::format("{}{}", list.empty() ? "" : ", ", id);
    return {"ambiguous",
            fmt::format("no open alarm has an id starting \"{}\"; {} past alarms do: {}", given,
                        by_alarm.size(), list),
            {}};
  }
  const auto& [id, events] = *by_alarm.begin();
  past_alarm out{"cleared", {}, id};
  const auto raised =
      std::find_if(events.begin(), events.end(), [](const event* e) { return is_alarm(e->kind); });
  const std::string what = raised != events.end()
                               ? fmt::format("{} on {}", to_string((*raised)->kind), (*raised)->device)
                               : "alarm";
  const auto acked = std::find_if(events.begin(), events.end(),
                                  [](const event* e) { return e->kind == event_kind::alarm_acknowledged; });
  if (acked != events.end()) {
    out.state = "acknowledged";
    out.message = fmt::format("alarm {} ({}) was acknowledged already, by {} as {} at {}", id, what,
                              (*acked)->actor, (*acked)->verdict, iso8601((*acked)->time));
    return out;
  }
  const auto ended = std::find_if(events.begin(), events.end(),
                                  [](const event* e) { return category_of(e->kind) == "recovery"; });
  out.message = ended != events.end()
                    ? fmt::format(
                          "alarm {} ({}) cleared at {} without an acknowledgement: there is nothing "
                          "left to acknowledge (firegatectl alarms --history keeps it)",
                          id, what, iso8601((*ended)->time))
                    : fmt::format("alarm {} ({}) is no longer open", id, what);
  return out;
}

}  // namespace firegate
