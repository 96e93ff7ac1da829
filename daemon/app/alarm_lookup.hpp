#pragma once
// Which alarm a technician means by the id given to `firegatectl ack`: the whole id or, as git
// takes a commit, a prefix of at least 4 characters that only one open alarm's id starts with.
// When no open alarm matches, the stored events say why: acknowledged already, cleared, or unknown
// here. Pure: the open alarms and the stored events are given.

#include "domain/event.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace firegate {

/// Characters of an alarm id that firegatectl shows and that a prefix needs at least.
inline constexpr std::size_t alarm_id_short = 8;
inline constexpr std::size_t alarm_id_prefix_min = 4;

/// An alarm id's short form, as firegatectl's tables show it.
inline std::string short_alarm_id(std::string_view id) {
  return std::string(id.substr(0, alarm_id_short));
}

/// Empty when `given` can be an alarm id or its prefix; else what is wrong with it.
std::string alarm_id_problem(std::string_view given);

/// The open alarms (not shields or test modes) whose id is `given` or starts with it; an exact
/// match alone when there is one.
std::vector<open_alarm> open_alarms_matching(const std::vector<open_alarm>& open, std::string_view given);

/// Why no open alarm matched `given`, from the stored events whose id or alarm id starts with it.
struct past_alarm {
  /// "acknowledged", "cleared", "ambiguous" or "unknown".
  std::string state;
  std::string message;
  /// The one alarm the stored events name (by its own id or an escalation's), when they name one.
  std::string alarm;
};
past_alarm explain_past_alarm(std::string_view given, const std::vector<event>& stored);

/// The refusal for a prefix that several open alarms share, naming each.
std::string ambiguous_open_alarms(std::string_view given, const std::vector<open_alarm>& matching);

}  // namespace firegate
