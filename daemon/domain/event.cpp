#include "domain/event.hpp"

namespace firegate {

std::string_view to_string(event_kind kind) {
  switch (kind) {
    case event_kind::fire_alarm:
      return "fire_alarm";
    case event_kind::fire_recovery:
      return "fire_recovery";
    case event_kind::device_offline:
      return "device_offline";
    case event_kind::device_online:
      return "device_online";
    case event_kind::storage_fault:
      return "storage_fault";
    case event_kind::storage_recovery:
      return "storage_recovery";
    case event_kind::storage_eviction:
      return "storage_eviction";
    case event_kind::supervisory_alarm:
      return "supervisory_alarm";
    case event_kind::supervisory_recovery:
      return "supervisory_recovery";
    case event_kind::device_fault:
      return "device_fault";
    case event_kind::device_fault_recovery:
      return "device_fault_recovery";
    case event_kind::alarm_acknowledged:
      return "alarm_acknowledged";
    case event_kind::alarm_escalation:
      return "alarm_escalation";
    case event_kind::device_shielded:
      return "device_shielded";
    case event_kind::device_unshielded:
      return "device_unshielded";
    case event_kind::test_mode_started:
      return "test_mode_started";
    case event_kind::test_mode_ended:
      return "test_mode_ended";
    case event_kind::linkage_done:
      return "linkage_done";
    case event_kind::linkage_failed:
      return "linkage_failed";
    case event_kind::linkage_overridden:
      return "linkage_overridden";
    case event_kind::bus_offline:
      return "bus_offline";
    case event_kind::bus_online:
      return "bus_online";
    case event_kind::config_rejected:
      return "config_rejected";
    case event_kind::config_applied:
      return "config_applied";
    case event_kind::register_written:
      return "register_written";
    case event_kind::clock_sync_refused:
      return "clock_sync_refused";
    case event_kind::config_changed:
      return "config_changed";
    case event_kind::config_confirmed:
      return "config_confirmed";
    case event_kind::config_rolled_back:
      return "config_rolled_back";
    case event_kind::clock_unsynchronised:
      return "clock_unsynchronised";
    case event_kind::clock_synchronised:
      return "clock_synchronised";
  }
  return "unknown";
}

std::string_view category_of(event_kind kind) {
  switch (kind) {
    case event_kind::fire_alarm:
    case event_kind::alarm_escalation:
      return "fire";
    case event_kind::supervisory_alarm:
      return "supervisory";
    case event_kind::device_offline:
    case event_kind::device_fault:
    case event_kind::storage_fault:
    case event_kind::storage_eviction:
    case event_kind::bus_offline:
    case event_kind::config_rejected:
    case event_kind::clock_sync_refused:
    case event_kind::clock_unsynchronised:
      return "fault";
    case event_kind::fire_recovery:
    case event_kind::supervisory_recovery:
    case event_kind::device_online:
    case event_kind::bus_online:
    case event_kind::config_applied:
    case event_kind::device_fault_recovery:
    case event_kind::storage_recovery:
    case event_kind::clock_synchronised:
      return "recovery";
    case event_kind::alarm_acknowledged:
      return "acknowledgement";
    case event_kind::device_shielded:
    case event_kind::device_unshielded:
      return "shielded";
    case event_kind::test_mode_started:
    case event_kind::test_mode_ended:
      return "test";
    case event_kind::linkage_done:
    case event_kind::linkage_failed:
    case event_kind::linkage_overridden:
      return "linkage";
    case event_kind::register_written:
    case event_kind::config_changed:
    case event_kind::config_confirmed:
    case event_kind::config_rolled_back:
      return "operation";
  }
  return "unknown";
}

std::string_view severity_of(event_kind kind) {
  switch (kind) {
    case event_kind::fire_alarm:
    case event_kind::alarm_escalation:
      return "critical";
    case event_kind::supervisory_alarm:
    case event_kind::device_offline:
    case event_kind::device_fault:
    case event_kind::storage_fault:
    case event_kind::linkage_failed:
    case event_kind::linkage_overridden:
    case event_kind::bus_offline:
    case event_kind::clock_sync_refused:
    case event_kind::clock_unsynchronised:
      return "major";
    case event_kind::storage_eviction:
    case event_kind::device_shielded:
    case event_kind::config_rejected:
    case event_kind::register_written:
    case event_kind::config_changed:
    case event_kind::config_rolled_back:
      return "minor";
    case event_kind::fire_recovery:
    case event_kind::supervisory_recovery:
    case event_kind::device_online:
    case event_kind::device_fault_recovery:
    case event_kind::storage_recovery:
    case event_kind::bus_online:
    case event_kind::config_applied:
    case event_kind::config_confirmed:
    case event_kind::alarm_acknowledged:
    case event_kind::device_unshielded:
    case event_kind::test_mode_started:
    case event_kind::test_mode_ended:
    case event_kind::linkage_done:
    case event_kind::clock_synchronised:
      return "info";
  }
  return "info";
}

bool on_alarm_lane(event_kind kind) {
  switch (kind) {
    case event_kind::fire_alarm:
    case event_kind::fire_recovery:
    case event_kind::supervisory_alarm:
    case event_kind::supervisory_recovery:
    case event_kind::alarm_acknowledged:
    case event_kind::alarm_escalation:
    case event_kind::linkage_done:
    case event_kind::linkage_failed:
    case event_kind::linkage_overridden:
      return true;
    default:
      return false;
  }
}

std::optional<event_kind> parse_event_kind(std::string_view name) {
  for (int k = 0; k <= static_cast<int>(last_event_kind); ++k) {
    if (to_string(static_cast<event_kind>(k)) == name) return static_cast<event_kind>(k);
  }
  return std::nullopt;
}

bool is_alarm(event_kind kind) {
  return kind == event_kind::fire_alarm || kind == event_kind::supervisory_alarm ||
         kind == event_kind::device_fault || kind == event_kind::device_offline ||
         kind == event_kind::bus_offline;
}

event_kind recovery_of(event_kind alarm) {
  switch (alarm) {
    case event_kind::fire_alarm:
      return event_kind::fire_recovery;
    case event_kind::supervisory_alarm:
      return event_kind::supervisory_recovery;
    case event_kind::device_offline:
      return event_kind::device_online;
    case event_kind::bus_offline:
      return event_kind::bus_online;
    default:
      return event_kind::device_fault_recovery;
  }
}

std::string_view to_string(verdict v) {
  switch (v) {
    case verdict::real:
      return "real";
    case verdict::false_alarm:
      return "false";
    case verdict::test:
      return "test";
  }
  return "real";
}

std::optional<verdict> parse_verdict(std::string_view s) {
  if (s == "real") return verdict::real;
  if (s == "false") return verdict::false_alarm;
  if (s == "test") return verdict::test;
  return std::nullopt;
}

}  // namespace firegate
