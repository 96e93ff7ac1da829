#pragma once
// Which alarm a technician means by the id given to `firegatectl ack`: the whole id or, as git
// takes a commit, a prefix of at least 4 characters that no other alarm known here starts with,
// open or past (a prefix read off a cleared alarm never acknowledges an open one by chance). When
// the alarm is not open, the stored events say why: acknowledged already, cleared, or unknown here.
// Pure: the open alarms and the stored events are given.

#include "domain/event.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace firegate {

/// Characters of an alarm id that firegatectl shows and that a prefix needs at least.
inline constexpr std::size_t alarm_id_short = 8;
inline constexpr std::size_t alarm_id_prefix_min = 4;

/// Empty when `given` can be an alarm id or its prefix; else what is wrong with it.
std::string alarm_id_problem(std::string_view given);

/// The open alarm whose whole id is `given`, if one is: the fast path that needs no stored event
/// (an escalation's id goes through resolve_ack).
const open_alarm* open_alarm_exactly(const std::vector<open_alarm>& open, std::string_view given);

/// What `ack GIVEN` means, from the open alarms and the stored events whose id or alarm id starts
/// with `given` (store::alarm_events).
struct ack_target {
  std::string alarm;  ///< the open alarm to acknowledge; empty when refused
  /// When refused: "ambiguous", "acknowledged", "cleared", "unknown" or "not_acknowledged" (a bus
  /// fault, which ends when the bus answers again).
  std::string state;
  std::string message;  ///< the refusal
};
ack_target resolve_ack(std::string_view given, const std::vector<open_alarm>& open,
                       const std::vector<event>& stored);

}  // namespace firegate
