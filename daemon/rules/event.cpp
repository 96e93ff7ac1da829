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
  }
  return "unknown";
}

std::string_view category_of(event_kind kind) {
  switch (kind) {
    case event_kind::fire_alarm:
      return "fire";
    case event_kind::device_offline:
    case event_kind::storage_fault:
    case event_kind::storage_eviction:
      return "fault";
    case event_kind::fire_recovery:
    case event_kind::device_online:
    case event_kind::storage_recovery:
      return "recovery";
  }
  return "unknown";
}

std::string_view severity_of(event_kind kind) {
  switch (kind) {
    case event_kind::fire_alarm:
      return "critical";
    case event_kind::device_offline:
    case event_kind::storage_fault:
      return "major";
    case event_kind::storage_eviction:
      return "minor";
    case event_kind::fire_recovery:
    case event_kind::device_online:
    case event_kind::storage_recovery:
      return "info";
  }
  return "info";
}

}  // namespace firegate
