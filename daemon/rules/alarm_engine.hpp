#pragma once
// The alarm engine: each device's rules (its profile's, with the site's overrides) evaluated on
// every reading, and device reachability; events out. Pure logic: readings, status changes and a
// monotonic time in, events out; the application stores and sends them.
//
// Not yet here (issue 5, next steps): latching until acknowledged, acknowledgement, escalation,
// shielding and test mode, linkage.

#include "event.hpp"
#include "reading.hpp"
#include "rules/condition.hpp"
#include "rules/rule_spec.hpp"

#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace firegate {

/// Thread safety: none; owned and called by the application on its loop.
class alarm_engine {
 public:
  struct device_rules {
    std::string device;
    std::vector<rules::alarm_rule> rules;
  };

  /// `new_id` returns a fresh event id; injected so tests are deterministic.
  alarm_engine(std::vector<device_rules> devices, std::function<std::string()> new_id);

  /// Events caused by readings taken at `now` (monotonic; the readings carry their wall-clock time).
  std::vector<event> on_readings(std::span<const reading> readings, rules::mono::time_point now);
  /// Time passing: stale data, debounces that complete between readings.
  std::vector<event> on_tick(rules::mono::time_point now, clock::time_point wall);
  std::vector<event> on_device_status(const device_status& status);
  /// New rules (a reloaded configuration). A rule that is unchanged keeps its state; an active alarm
  /// whose rule changed or went is recovered, and the new rule decides afresh.
  std::vector<event> reconfigure(std::vector<device_rules> devices, clock::time_point wall);

  /// An alarm open at the last stop (from the store).
  struct open_alarm {
    std::string id;
    event_kind kind{event_kind::fire_alarm};  ///< fire_alarm, supervisory_alarm, device_fault, device_offline
    std::string device;
    std::string rule;  ///< empty for device_offline
    double value{0};
  };
  /// Marks open alarms active again, raising nothing: the first reading then keeps each (still in
  /// alarm) or ends it with a recovery naming it. One whose rule is gone is ended at once.
  std::vector<event> restore(const std::vector<open_alarm>& open, clock::time_point wall);

  /// Active fire alarms.
  std::size_t active_fires() const;

 private:
  struct rule_state {
    rules::alarm_rule rule;
    rules::condition condition;
    std::string active_id;  ///< the alarm event's id while raised
  };
  event make(const rule_state& s, bool raised, const std::string& device, double value,
             const std::string& unit, clock::time_point time);
  /// The recovery of a device's offline fault; the fault is no longer open afterwards.
  event back_online(std::map<std::string, std::string>::iterator offline, clock::time_point time,
                    std::string detail);
  void on_change(rules::change ch, rule_state& s, const std::string& device, double value,
                 const std::string& unit, clock::time_point time, std::vector<event>& out);

  std::function<std::string()> new_id_;
  /// device → its rules' states
  std::map<std::string, std::vector<rule_state>, std::less<>> devices_;
  std::map<std::string, std::string> offline_;  ///< device → active offline fault id
};

}  // namespace firegate
