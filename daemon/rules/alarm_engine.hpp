#pragma once
// The alarm engine: each device's rules (its profile's, with the site's overrides) evaluated on
// every reading, device reachability, and each alarm followed until a person has dealt with it.
// Pure logic: readings, status changes, commands and a monotonic time in, events out; the
// application stores and sends them. docs/alarms.md describes the lifecycle.
//
// An alarm is active from its event until its recovery. Acknowledged (by its id, with who and a
// verdict) it stops escalating; a latched one (fire by default) stays active after its condition
// clears until acknowledged. A shielded device raises nothing; a device in test mode raises alarms
// marked test. Shields and test modes end by themselves at a stated time.

#include "domain/event.hpp"
#include "domain/reading.hpp"
#include "domain/rule.hpp"
#include "rules/boxed.hpp"
#include "rules/condition.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace firegate {

/// The rule name of the gateway's end-to-end self-test alarm (alarm_engine::self_test).
inline constexpr std::string_view self_test_rule = "self_test";

/// Thread safety: none; owned and called by the application on its loop.
/// The rule of a device_fault the driver raises, not a profile: answers mostly malformed, CRC
/// errors or timeouts, though the device never stayed silent long enough to go offline.
inline constexpr std::string_view comm_quality_rule = "comm_quality";

class alarm_engine {
 public:
  struct device_rules {
    /// The rules as the configuration holds them: shared by the devices of one profile that the
    /// site does not override, and the engine keeps them shared (never null).
    device_rules(std::string name, std::shared_ptr<const std::vector<alarm_rule>> list)
        : device(std::move(name)), rules(std::move(list)) {}
    device_rules(std::string name, std::vector<alarm_rule> list)
        : device(std::move(name)), rules(std::make_shared<const std::vector<alarm_rule>>(std::move(list))) {}
    std::string device;
    std::shared_ptr<const std::vector<alarm_rule>> rules;
  };

  /// `new_id` returns a fresh event id; injected so tests are deterministic.
  alarm_engine(std::vector<device_rules> devices, std::function<std::string()> new_id,
               alarm_policy policy = {});

  /// Events caused by readings taken at `now` (monotonic; the readings carry their wall-clock time).
  std::vector<event> on_readings(std::span<const reading> readings, rules::mono::time_point now);
  /// Time passing: stale data, debounces that complete between readings, escalation, shields and
  /// test modes that run out.
  std::vector<event> on_tick(rules::mono::time_point now, clock::time_point wall);
  /// A device's reachability. Offline `by_bus` (its bus is down) it is counted offline but raises
  /// nothing: the bus's fault is the one alert.
  std::vector<event> on_device_status(const device_status& status, rules::mono::time_point now);
  /// A bus down (one bus_offline fault naming the devices behind it) or back (bus_online).
  std::vector<event> on_bus_status(const bus_status& status);
  /// A device that answers mostly badly: a device_fault of rule comm_quality, ended when the
  /// driver says it is good again.
  std::vector<event> on_device_quality(const device_quality& quality);
  /// Ends the bus faults of buses no longer configured (a reload or a restart removed or renamed
  /// them): nothing else would.
  std::vector<event> end_bus_faults_except(const std::vector<std::string>& buses, clock::time_point wall);
  /// New rules (a reloaded configuration). A rule that is unchanged keeps its state; an active alarm
  /// whose rule changed or went is recovered, and the new rule decides afresh.
  std::vector<event> reconfigure(std::vector<device_rules> devices, alarm_policy policy,
                                 clock::time_point wall);

  /// What a command did: the events, or why it was refused (nothing changed then).
  struct outcome {
    std::string error;
    std::vector<event> events;
    bool ok() const { return error.empty(); }
  };
  /// Acknowledges the open alarm `alarm_id` (or its latest escalation's id).
  outcome acknowledge(const std::string& alarm_id, verdict v, const std::string& by, clock::time_point wall);
  /// Shields a device for `length`: its open alarms end, and it raises nothing until unshielded.
  outcome shield(const std::string& device, std::chrono::seconds length, const std::string& reason,
                 const std::string& by, rules::mono::time_point now, clock::time_point wall);
  /// Lifts a shield: whatever holds then is raised.
  outcome unshield(const std::string& device, const std::string& by, rules::mono::time_point now,
                   clock::time_point wall);
  /// Test mode on for `length`, or off: on, new alarms are marked test; off, open test alarms end
  /// and whatever still holds is raised as real.
  outcome set_test_mode(const std::string& device, bool on, std::chrono::seconds length,
                        const std::string& by, rules::mono::time_point now, clock::time_point wall);
  /// The end-to-end self-test: a test fire alarm of the gateway itself (no device, rule
  /// "self_test") that travels the whole path to the platform. The platform's acknowledgement
  /// ends it (alarm_acknowledged, then its recovery). One at a time.
  outcome self_test(const std::string& by, clock::time_point wall);

  /// Marks open alarms active again, raising nothing: the first reading then keeps each (still in
  /// alarm) or ends it with a recovery naming it. One whose rule is gone is ended at once, as is a
  /// shield or test mode that ran out while stopped. `false_alarms_today`: per device, from the store.
  std::vector<event> restore(const std::vector<open_alarm>& open,
                             const std::map<std::string, unsigned>& false_alarms_today,
                             rules::mono::time_point now, clock::time_point wall);

  /// Active fire alarms (acknowledged or not), test alarms not counted.
  std::size_t active_fires() const;
  /// What is open now, for the gateway's status.
  using counts = alarm_counts;
  counts count() const;
  /// Every open alarm, shield and test mode, as restore() takes them.
  std::vector<open_alarm> open_alarms() const;

 private:
  /// An alarm from its event to its recovery.
  struct alarm_record {
    std::string id;
    event_kind kind{event_kind::fire_alarm};
    clock::time_point first;
    double value{0};
    std::string unit;
    std::string detail;
    bool holds{true};  ///< its condition still holds (a latched alarm outlives it)
    bool latch{false};
    std::string verdict, actor;  ///< acknowledged when verdict is set
    unsigned repeats{0};
    std::string last_escalation_id;
    rules::mono::time_point next_escalation{};
    bool test{false};
  };
  struct rule_state {
    std::shared_ptr<const alarm_rule> rule;  ///< into the device's shared rule list; null once moved
    rules::condition condition;
    rules::boxed<alarm_record> alarm;
    std::vector<evidence_item> evidence;  ///< its evidence points as the last poll of its point read them
  };
  /// A shield or a test mode.
  struct device_mode {
    std::string id;
    rules::mono::time_point ends;
    clock::time_point until;
    std::string reason, actor;
    clock::time_point since;  ///< when it was set
  };
  struct device_state {
    std::vector<rule_state> rules;
    rules::boxed<alarm_record> offline;  ///< the open offline fault
    rules::boxed<alarm_record> comm;     ///< the open communication-quality fault (comm_quality)
    bool comm_poor_now{false};           ///< as the driver last said, shielded or not
    std::string comm_detail;
    bool offline_now{false};     ///< as the driver last said, shielded or not
    bool offline_by_bus{false};  ///< offline with its whole bus: the bus's fault covers it
    std::string offline_detail;
    rules::boxed<device_mode> shield, test;
  };
  using device_map = std::map<std::string, device_state, std::less<>>;

  event make_event(event_kind kind, const std::string& device, clock::time_point time);
  event alarm_event(const rule_state& s, const std::string& device, const device_state& d, double value,
                    const std::string& unit, clock::time_point time);
  /// An event about an open alarm (its acknowledgement, escalation or recovery), naming it.
  event about(event_kind kind, const alarm_record& a, const std::string& device, const rule_state* s,
              clock::time_point time);
  /// The recovery of an open alarm; the caller resets the record.
  event recovery(const alarm_record& a, const std::string& device, const rule_state* s,
                 clock::time_point time, std::string detail);
  void on_change(rules::change ch, rule_state& s, const std::string& device, device_state& d, double value,
                 const std::string& unit, clock::time_point time, rules::mono::time_point now,
                 std::vector<event>& out);
  void raise_offline(const std::string& device, device_state& d, clock::time_point time,
                     rules::mono::time_point now, std::vector<event>& out);
  void raise_comm(const std::string& device, device_state& d, clock::time_point time,
                  std::vector<event>& out);
  /// Ends every open alarm of a device (a shield begins), or only its test alarms (test mode ends).
  void end_alarms(const std::string& device, device_state& d, bool test_only, const std::string& why,
                  clock::time_point wall, std::vector<event>& out);
  /// Raises what holds on a device whose alarms count again (a shield or test mode ended).
  void raise_holding(const std::string& device, device_state& d, clock::time_point wall,
                     rules::mono::time_point now, std::vector<event>& out);
  void end_shield(const std::string& device, device_state& d, const std::string& by, clock::time_point wall,
                  rules::mono::time_point now, std::vector<event>& out);
  void end_test_mode(const std::string& device, device_state& d, const std::string& by,
                     clock::time_point wall, rules::mono::time_point now, std::vector<event>& out);
  void escalate(alarm_record& a, const std::string& device, const rule_state* s, rules::mono::time_point now,
                clock::time_point wall, std::vector<event>& out);
  unsigned count_false_alarm(const std::string& device, clock::time_point wall);
  unsigned false_alarms_today(const std::string& device, clock::time_point wall) const;

  std::function<std::string()> new_id_;
  alarm_policy policy_;
  device_map devices_;
  rules::boxed<alarm_record> self_test_;                    ///< the open self-test alarm
  std::map<std::string, alarm_record, std::less<>> buses_;  ///< open bus_offline faults, by bus
  /// Opens (or restores) the bus_offline fault `id` of `bus`.
  void open_bus_fault(const std::string& bus, std::string id, clock::time_point first, double devices,
                      std::string detail);
  /// device → (local date as yyyymmdd, false alarms that day)
  std::map<std::string, std::pair<int, unsigned>, std::less<>> false_alarms_;
};

/// The local calendar date of `t` as yyyymmdd: false alarms are counted per local day.
int local_day(clock::time_point t);
/// Local midnight starting the day of `t`.
clock::time_point local_midnight(clock::time_point t);

}  // namespace firegate
