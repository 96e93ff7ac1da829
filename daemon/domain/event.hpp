#pragma once
// Events the gateway raises: alarms, faults and their recoveries. An event is stored (with a full
// sync) before any uplink sees it; its id is stable across retries so the platform can de-duplicate.

#include "domain/reading.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace firegate {

enum class event_kind : std::uint8_t {
  fire_alarm,             ///< a fire rule holds (a detector reports fire, leakage over its setting)
  fire_recovery,          ///< it no longer holds
  device_offline,         ///< the device stopped answering (a fault)
  device_online,          ///< the device answers again after being offline
  storage_fault,          ///< the gateway's own database failed (moved aside when unreadable at start)
  storage_recovery,       ///< the database takes writes again after a storage fault
  storage_eviction,       ///< the store removed readings or undelivered telemetry to stay within its bounds
  supervisory_alarm,      ///< a supervisory rule holds (pre-alarm, hidden danger: a cable heating fast)
  supervisory_recovery,   ///< it no longer holds
  device_fault,           ///< a fault rule holds (the detector reports a fault, a probe open, low supply)
  device_fault_recovery,  ///< it no longer holds
  alarm_acknowledged,     ///< a person dealt with an open alarm (the platform's verdict: real, false, test)
  alarm_escalation,       ///< a fire alarm nobody acknowledged in time, raised again (`repeat` times)
  device_shielded,        ///< a technician disabled a device's alarms for a stated time, with a reason
  device_unshielded,      ///< its alarms count again (the time ran out, or it was lifted)
  test_mode_started,      ///< a device under maintenance: its alarms are marked test, not dispatched on
  test_mode_ended,        ///< its alarms are real again
  linkage_done,           ///< a rule's linkage wrote its output (a siren, a breaker) and it read back
  linkage_failed,         ///< the linkage write failed or did not read back: someone must act by hand
  linkage_overridden,     ///< a technician wrote an output that open alarms hold (firegatectl write --force)
  bus_offline,            ///< a bus's transport failed (its connection, serial port, or every unit silent)
  bus_online,             ///< the bus answers again
  config_rejected,        ///< a reload refused the site file: the gateway runs an older configuration
  config_applied,         ///< a configuration applied after a refused reload (ends config_rejected)
  register_written,       ///< a technician wrote registers or coils by hand (firegatectl write)
  clock_sync_refused,     ///< the GB/T 26875.3 centre asked to move the time labels by more than allowed
  config_changed,         ///< the platform's change applied, standing only once confirmed (docs/remote.md)
  config_confirmed,       ///< the platform confirmed it: it stands
  config_rolled_back,     ///< not confirmed in time (or the box restarted first): the one before is back
  clock_unsynchronised,   ///< the system clock has not been synchronised for [alarms] clock_fault_after_s
  clock_synchronised,     ///< it is again (ends clock_unsynchronised)
};
/// The last kind, for loops over every kind.
inline constexpr event_kind last_event_kind = event_kind::clock_synchronised;

std::string_view to_string(event_kind kind);
/// GB/T 26875.3-aligned category: "fire", "supervisory", "fault", "recovery", "acknowledgement",
/// "shielded", "test", "linkage" or "operation" (a person's action on the box).
std::string_view category_of(event_kind kind);
/// "critical" for fire, "major" for faults, "info" for recoveries.
std::string_view severity_of(event_kind kind);

/// bus_offline, bus_online: where the bus is, what failed and the devices behind it.
struct bus_info {
  std::string address;
  std::string failed;
  std::vector<std::string> devices;
};

/// config_changed, config_confirmed, config_rolled_back: the configurations a change went between
/// (full revisions), and what it changed.
struct config_change_info {
  std::string revision;  ///< in force after the event
  std::string previous;  ///< in force before it
  std::string diff;
};

/// A value that goes with an alarm as its evidence (its rule's `evidence` points).
struct evidence_item {
  std::string point;
  double value{0};
  std::string unit;
  std::string label;  ///< what the value means where its profile names it ("fire")
};

struct event {
  std::string id;        ///< UUID v4, stable across retries
  std::uint64_t seq{0};  ///< per-gateway sequence number, assigned by the store
  event_kind kind{event_kind::fire_alarm};
  std::string device;
  std::string point;  ///< empty for device-level events
  double value{0};
  std::string unit;
  clock::time_point time;
  std::string alarm_id;  ///< for a recovery: the id of the event it ends
  std::string detail;    ///< a sentence for people ("no answer from 127.0.0.1:1502 unit 3: timeout")
  std::string rule;      ///< the profile's rule that decided it ("leakage"); empty for device-level events
  std::optional<double> threshold;  ///< the setting crossed (high/low) or the rate a minute (rate of rise)
  std::optional<std::int64_t> device_code;  ///< the rule's maker code (201 leakage), where it has one
  /// Raised by a device in test mode: control rooms do not dispatch on it.
  bool test{false};
  /// For an event about an alarm (its acknowledgement, escalation or recovery): when it was raised.
  std::optional<clock::time_point> first_time;
  std::string verdict;  ///< "real", "false" or "test" once acknowledged; empty: unconfirmed
  std::string actor;    ///< who acknowledged, shielded, set test mode
  unsigned repeat{0};   ///< alarm_escalation: how many times it has been raised again
  /// device_shielded, test_mode_started: when it ends by itself.
  std::optional<clock::time_point> until;
  /// False alarms of this device today (local date), on its alarms and acknowledgements once any.
  unsigned false_alarms_today{0};
  /// bus_offline, bus_online: `device` is then the bus's name.
  std::optional<bus_info> bus;
  /// The configuration events: the revisions and the diff summary.
  std::optional<config_change_info> configuration;
  /// What `value` means where the point's profile names it ("fire" for state 1).
  std::string value_label;
  /// The readings behind an alarm, from the poll that decided it.
  std::vector<evidence_item> evidence;
  /// Whether the system clock was synchronised when the event was raised (docs/clock.md): `time`
  /// is evidence only as good as the clock. Empty: unknown (the clock's state could not be read).
  std::optional<bool> clock_synchronised;
  /// Carried over from a damaged database (docs/storage.md): whether it was delivered is unknown,
  /// so it goes again, marked.
  bool recovered{false};
};

/// An alarm raised and not yet ended by a recovery, or a shield or test mode not yet ended: what the
/// store knows at start, and what the engine holds open.
struct open_alarm {
  std::string id;
  /// fire_alarm, supervisory_alarm, device_fault, device_offline, device_shielded, test_mode_started
  event_kind kind{event_kind::fire_alarm};
  std::string device;
  std::string rule;  ///< empty for device-level ones
  std::string point;
  double value{0};
  clock::time_point time{};                ///< when it was raised
  std::string detail;                      ///< its text; for a shield, the reason
  std::string verdict;                     ///< acknowledged when not empty
  std::string actor;                       ///< who acknowledged it; for a shield or test mode, who set it
  unsigned repeats{0};                     ///< escalations so far
  bool test{false};                        ///< raised in test mode
  std::optional<clock::time_point> until;  ///< shields and test modes: when they end by themselves
};

/// What the platform says an acknowledged alarm was.
enum class verdict : std::uint8_t { real, false_alarm, test };
std::string_view to_string(verdict v);
/// "real", "false" or "test".
std::optional<verdict> parse_verdict(std::string_view s);

/// What is open, counted: the status message's and firegatectl status's alarm figures.
struct alarm_counts {
  std::size_t fire{0}, supervisory{0}, fault{0};  ///< real alarms, acknowledged or not
  std::size_t unacknowledged{0};                  ///< fire and supervisory not yet acknowledged
  std::size_t test{0};                            ///< test alarms: of devices in test mode, and the self-test
  std::size_t shielded{0}, in_test_mode{0};       ///< devices
};

/// The kind named by to_string(), if any.
std::optional<event_kind> parse_event_kind(std::string_view name);

/// The kinds an open alarm can have: fire_alarm, supervisory_alarm, device_fault, device_offline,
/// bus_offline.
bool is_alarm(event_kind kind);
/// The kind of event that ends an alarm of this kind (fire_alarm → fire_recovery).
event_kind recovery_of(event_kind alarm);

/// Alarms and their recoveries (fire and supervisory) go on the alarm lane and topic; the rest on
/// the fault lane and the event topic.
bool on_alarm_lane(event_kind kind);

}  // namespace firegate
