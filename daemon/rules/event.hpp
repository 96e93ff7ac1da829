#pragma once
// Events the gateway raises: alarms, faults and their recoveries. An event is stored (with a full
// sync) before any uplink sees it; its id is stable across retries so the platform can de-duplicate.

#include "reading.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace firegate {

enum class event_kind : std::uint8_t {
  fire_alarm,      ///< a detector reports fire
  fire_recovery,   ///< the detector is back to normal after a fire alarm
  device_offline,  ///< the device stopped answering (a fault)
  device_online,   ///< the device answers again after being offline
  storage_fault,     ///< the gateway's own database failed (moved aside when unreadable at start)
  storage_recovery,  ///< the database takes writes again after a storage fault
  storage_eviction,  ///< the store removed readings or undelivered telemetry to stay within its bounds
};

std::string_view to_string(event_kind kind);
/// GB/T 26875.3-aligned category: "fire", "fault" or "recovery".
std::string_view category_of(event_kind kind);
/// "critical" for fire, "major" for faults, "info" for recoveries.
std::string_view severity_of(event_kind kind);

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
};

}  // namespace firegate
