#pragma once
// The gateway's health: what a status report says of the box (the MQTT uplink's status message,
// firegatectl status, the platform's status command). Plain data.

#include "domain/event.hpp"

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace firegate {

/// The gateway's health, as a status report gives it.
struct gateway_health {
  std::string id;  ///< this message's id
  clock::time_point time;
  clock::time_point started;            ///< when firegated started
  std::array<std::size_t, 3> outbox{};  ///< waiting per lane: alarm, event, telemetry
  std::size_t devices{0}, devices_offline{0};
  alarm_counts alarms;
  std::string storage{"ok"};  ///< "ok", "failing" or "memory" (the database could not be opened)
  std::size_t storage_faults{0};
  std::size_t uplink_connects{0};  ///< connections made since the start
  /// The configuration in force, and the last reload refused since it was applied.
  struct configuration {
    std::string revision;  ///< config::gateway_file::revision
    clock::time_point loaded;
    std::optional<clock::time_point> rejected;  ///< when the last reload was refused
    std::vector<std::string> errors;            ///< its first errors, "file:line key: problem"
    /// "site file", or "platform" when a configuration the platform sent stands over it.
    std::string source{"site file"};
    /// A change from the platform applied and waiting for its confirmation (docs/remote.md).
    std::string pending;
    std::optional<clock::time_point> pending_deadline;  ///< rolled back then unless confirmed
  } config;
  /// The system clock (docs/clock.md).
  struct clock_health {
    std::optional<bool> synchronised;  ///< empty: its state could not be read (`error`)
    std::int64_t max_error_us{0};      ///< the kernel's bound on its error; -1: not known
    std::string source;                ///< "adjtimex" or "timedated"
    std::optional<clock::time_point> unsynchronised_since;  ///< first seen so, this run
    std::string error;
    /// The platform's clock minus the box's where one measured it: the GB/T 26875.3 centre's last
    /// clock synchronisation (to the second), and when.
    std::optional<std::int64_t> platform_offset_ms;
    std::optional<clock::time_point> platform_measured;
    std::string fault;  ///< the open clock_unsynchronised event's id; "" when none
  } wall_clock;
};

}  // namespace firegate
