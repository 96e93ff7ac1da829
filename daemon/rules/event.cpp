#include "event.hpp"

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
  }
  return "unknown";
}

std::string_view category_of(event_kind kind) {
  switch (kind) {
    case event_kind::fire_alarm:
      return "fire";
    case event_kind::supervisory_alarm:
      return "supervisory";
    case event_kind::device_offline:
    case event_kind::device_fault:
    case event_kind::storage_fault:
    case event_kind::storage_eviction:
      return "fault";
    case event_kind::fire_recovery:
    case event_kind::supervisory_recovery:
    case event_kind::device_online:
    case event_kind::device_fault_recovery:
    case event_kind::storage_recovery:
      return "recovery";
  }
  return "unknown";
}

std::string_view severity_of(event_kind kind) {
  switch (kind) {
    case event_kind::fire_alarm:
      return "critical";
    case event_kind::supervisory_alarm:
    case event_kind::device_offline:
    case event_kind::device_fault:
    case event_kind::storage_fault:
      return "major";
    case event_kind::storage_eviction:
      return "minor";
    case event_kind::fire_recovery:
    case event_kind::supervisory_recovery:
    case event_kind::device_online:
    case event_kind::device_fault_recovery:
    case event_kind::storage_recovery:
      return "info";
  }
  return "info";
}

bool on_alarm_lane(event_kind kind) {
  return kind == event_kind::fire_alarm || kind == event_kind::fire_recovery ||
         kind == event_kind::supervisory_alarm || kind == event_kind::supervisory_recovery;
}

}  // namespace firegate
