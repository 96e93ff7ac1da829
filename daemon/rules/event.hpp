#pragma once
// Events the gateway raises: alarms, faults and their recoveries. An event is stored (with a full
// sync) before any uplink sees it; its id is stable across retries so the platform can de-duplicate.

#include "reading.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

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
};

std::string_view to_string(event_kind kind);
/// GB/T 26875.3-aligned category: "fire", "supervisory", "fault" or "recovery".
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
  std::string rule;      ///< the profile's rule that decided it ("leakage"); empty for device-level events
  std::optional<double> threshold;  ///< the setting crossed (high/low) or the rate a minute (rate of rise)
};

/// Alarms and their recoveries (fire and supervisory) go on the alarm lane and topic; the rest on
/// the fault lane and the event topic.
bool on_alarm_lane(event_kind kind);

}  // namespace firegate
